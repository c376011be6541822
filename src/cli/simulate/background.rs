//! Ordinary activity: the benign bulk of the stream, at a diurnal rate.

use serde_json::json;

use super::record::Access;
use super::rng::{cumulative, Rng};
use super::sources::*;
use super::timeline::Timeline;
use super::world::{diurnal, Host, World};

/// Kinds of benign activity and their relative frequency, with the mean
/// number of records each produces (to turn a record rate into an activity rate).
const MIX: [(Activity, f64, f64); 11] = [
    (Activity::SshSession, 5.0, 4.0),
    (Activity::InternetSsh, 3.0, 1.25),
    (Activity::Sudo, 3.0, 3.05),
    (Activity::Cron, 2.0, 2.0),
    (Activity::Su, 1.0, 3.0),
    (Activity::Web, 30.0, 1.0),
    (Activity::WinLogon, 8.0, 1.11),
    (Activity::WinProcess, 8.0, 2.0),
    (Activity::SysmonNet, 5.0, 1.0),
    (Activity::SysmonFile, 3.0, 1.0),
    (Activity::AppLogin, 5.0, 1.09),
];

#[derive(Debug, Clone, Copy)]
enum Activity {
    SshSession,
    InternetSsh,
    Sudo,
    Cron,
    Su,
    Web,
    WinLogon,
    WinProcess,
    SysmonNet,
    SysmonFile,
    AppLogin,
}

const PAGES: [&str; 24] = [
    "/",
    "/index.html",
    "/products",
    "/products/42",
    "/products/17",
    "/cart",
    "/checkout",
    "/about",
    "/contact",
    "/blog",
    "/blog/2024/12/holiday-sale",
    "/search?q=shoes",
    "/search?q=red+jacket",
    "/api/v1/products?page=2",
    "/api/v1/cart",
    "/account",
    "/account/orders",
    "/static/css/main.3f2a.css",
    "/static/js/app.9c1e.js",
    "/static/img/logo.svg",
    "/favicon.ico",
    "/robots.txt",
    "/sitemap.xml",
    "/api/v1/session",
];

const COMMANDS: [&str; 10] = [
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/apt-get update",
    "/usr/bin/journalctl -u app --since today",
    "/usr/bin/docker ps",
    "/usr/bin/tail -n 200 /var/log/syslog",
    "/usr/bin/systemctl status postgresql",
    "/usr/bin/vim /etc/hosts",
    "/usr/sbin/ss -tlnp",
    "/usr/bin/apt-get -y upgrade",
    "/usr/bin/kubectl get pods -A",
];

const WIN_PROCS: [(&str, &str, &str); 8] = [
    (
        "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
        "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=renderer",
        "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
    ),
    (
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
        "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE\"",
        "C:\\Windows\\explorer.exe",
    ),
    (
        "C:\\Users\\{u}\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe",
        "\"C:\\Users\\{u}\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe\"",
        "C:\\Windows\\explorer.exe",
    ),
    (
        "C:\\Windows\\System32\\notepad.exe",
        "\"C:\\Windows\\System32\\notepad.exe\" C:\\Users\\{u}\\Documents\\notes.txt",
        "C:\\Windows\\explorer.exe",
    ),
    (
        "C:\\Windows\\System32\\svchost.exe",
        "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
        "C:\\Windows\\System32\\services.exe",
    ),
    (
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
        "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE\" /dde",
        "C:\\Windows\\explorer.exe",
    ),
    (
        "C:\\Windows\\System32\\taskhostw.exe",
        "taskhostw.exe",
        "C:\\Windows\\System32\\svchost.exe",
    ),
    (
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "powershell.exe -NoProfile -Command Get-Date",
        "C:\\Windows\\explorer.exe",
    ),
];

/// Generates benign activity on a Poisson clock modulated by [`diurnal`].
pub struct Background {
    rng: Rng,
    cum: Vec<f64>,
    /// Mean gap between activities at diurnal factor 1, in milliseconds.
    mean_gap_ms: f64,
    /// Time of the next activity.
    pub next_ms: i64,
}

impl Background {
    /// Background at `rate` records per simulated second (weekly mean), from `start_ms`.
    pub fn new(rng: Rng, rate: f64, start_ms: i64) -> Background {
        let total: f64 = MIX.iter().map(|m| m.1).sum();
        let per_activity: f64 = MIX.iter().map(|m| m.1 * m.2).sum::<f64>() / total;
        let mut b = Background {
            rng,
            cum: cumulative(MIX.iter().map(|m| m.1)),
            mean_gap_ms: 1000.0 * per_activity / rate,
            next_ms: start_ms,
        };
        b.advance();
        b
    }

    fn advance(&mut self) {
        let f = diurnal(self.next_ms).max(0.01);
        let gap = self.rng.exp(self.mean_gap_ms / f);
        // At least 1 ms apart keeps timestamps strictly informative.
        self.next_ms += gap.max(1.0) as i64;
    }

    /// Generates the activity due at `next_ms` into `tl`, then moves the clock.
    pub fn step(&mut self, w: &World, tl: &mut Timeline) {
        let t = self.next_ms;
        let a = MIX[self.rng.weighted(&self.cum)].0;
        let r = &mut self.rng;
        match a {
            Activity::SshSession => ssh_session(t, w, r, tl),
            Activity::InternetSsh => internet_ssh(t, w, r, tl),
            Activity::Sudo => sudo(t, w, r, tl),
            Activity::Cron => cron(t, w, r, tl),
            Activity::Su => su(t, w, r, tl),
            Activity::Web => web(t, w, r, tl),
            Activity::WinLogon => win_logon(t, w, r, tl),
            Activity::WinProcess => win_process(t, w, r, tl),
            Activity::SysmonNet => sysmon_net(t, w, r, tl),
            Activity::SysmonFile => sysmon_file(t, w, r, tl),
            Activity::AppLogin => app_login(t, w, r, tl),
        }
        self.advance();
    }
}

fn ssh_session(t: i64, w: &World, r: &mut Rng, tl: &mut Timeline) {
    let host = w.linux_host(r);
    let u = w.user(r);
    let ip = &w.workstations[u.workstation].ip;
    let p = pid(r);
    let port = port(r);
    let msg = if r.chance(0.8) {
        format!(
            "Accepted publickey for {} from {ip} port {port} ssh2: ED25519 SHA256:{}",
            u.name,
            fingerprint(r)
        )
    } else {
        format!(
            "Accepted password for {} from {ip} port {port} ssh2",
            u.name
        )
    };
    tl.push(syslog(t, host, PRI_AUTH_INFO, "sshd", p, msg));
    tl.push(syslog(
        t + 3,
        host,
        PRI_AUTHPRIV_INFO,
        "sshd",
        p,
        format!(
            "pam_unix(sshd:session): session opened for user {}(uid={}) by (uid=0)",
            u.name, u.uid
        ),
    ));
    let end = t + r.exp(40.0 * 60_000.0) as i64 + 5_000;
    tl.push(syslog(
        end,
        host,
        PRI_AUTH_INFO,
        "sshd",
        p,
        format!("Disconnected from user {} {ip} port {port}", u.name),
    ));
    tl.push(syslog(
        end + 2,
        host,
        PRI_AUTHPRIV_INFO,
        "sshd",
        p,
        format!("pam_unix(sshd:session): session closed for user {}", u.name),
    ));
}

/// Background radiation on internet-facing sshd: probes and one-off guesses.
fn internet_ssh(t: i64, w: &World, r: &mut Rng, tl: &mut Timeline) {
    let exposed = w.exposed();
    let host = *r.pick(&exposed);
    let ip = w.visitor(r);
    let p = pid(r);
    let port = port(r);
    match r.below(4) {
        0 => tl.push(syslog(
            t,
            host,
            PRI_AUTH_INFO,
            "sshd",
            p,
            format!("Connection closed by {ip} port {port} [preauth]"),
        )),
        1 => {
            let u = r.pick(&["admin", "test", "oracle", "ubuntu", "user", "pi", "git"]);
            tl.push(syslog(
                t,
                host,
                PRI_AUTH_INFO,
                "sshd",
                p,
                format!("Invalid user {u} from {ip} port {port}"),
            ));
            tl.push(syslog(
                t + 180,
                host,
                PRI_AUTH_INFO,
                "sshd",
                p,
                format!("Connection closed by invalid user {u} {ip} port {port} [preauth]"),
            ));
        }
        2 => tl.push(syslog(
            t,
            host,
            PRI_AUTH_INFO,
            "sshd",
            p,
            format!("Did not receive identification string from {ip} port {port}"),
        )),
        _ => tl.push(syslog(
            t,
            host,
            PRI_AUTH_INFO,
            "sshd",
            p,
            format!(
                "Unable to negotiate with {ip} port {port}: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]"
            ),
        )),
    }
}

fn sudo(t: i64, w: &World, r: &mut Rng, tl: &mut Timeline) {
    let host = w.linux_host(r);
    // Only admins are sudoers. (Drawing users until an admin came up left
    // about a third of sudo to random users, so every user looked like a
    // sudoer and a non-sudoer's attempt looked ordinary.)
    let admins: Vec<&super::world::User> = w.users.iter().filter(|u| u.admin).collect();
    let u = if admins.is_empty() {
        w.user(r)
    } else {
        admins[r.below(admins.len())]
    };
    let p = pid(r);
    let tty = format!("pts/{}", r.below(6));
    let cmd = r.pick(&COMMANDS);
    let mut t = t;
    if r.chance(0.05) {
        // A typo before the right password: benign noise detectors must tolerate.
        tl.push(syslog(
            t,
            host,
            PRI_AUTHPRIV_NOTICE,
            "sudo",
            p,
            format!(
                "pam_unix(sudo:auth): authentication failure; logname={n} uid={uid} euid=0 tty=/dev/{tty} ruser={n} rhost=  user={n}",
                n = u.name,
                uid = u.uid
            ),
        ));
        t += 4_000;
    }
    tl.push(syslog(
        t,
        host,
        PRI_AUTHPRIV_NOTICE,
        "sudo",
        p,
        format!(
            "{:>8} : TTY={tty} ; PWD=/home/{} ; USER=root ; COMMAND={cmd}",
            u.name, u.name
        ),
    ));
    tl.push(syslog(
        t + 2,
        host,
        PRI_AUTHPRIV_INFO,
        "sudo",
        p,
        format!(
            "pam_unix(sudo:session): session opened for user root(uid=0) by {}(uid={})",
            u.name, u.uid
        ),
    ));
    tl.push(syslog(
        t + r.range(200, 20_000) as i64,
        host,
        PRI_AUTHPRIV_INFO,
        "sudo",
        p,
        "pam_unix(sudo:session): session closed for user root".into(),
    ));
}

fn cron(t: i64, w: &World, r: &mut Rng, tl: &mut Timeline) {
    let host = w.linux_host(r);
    let p = pid(r);
    tl.push(syslog(
        t,
        host,
        PRI_AUTHPRIV_INFO,
        "CRON",
        p,
        "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)".into(),
    ));
    tl.push(syslog(
        t + r.range(50, 3000) as i64,
        host,
        PRI_AUTHPRIV_INFO,
        "CRON",
        p,
        "pam_unix(cron:session): session closed for user root".into(),
    ));
}

/// An admin switching to a service account (`su - postgres`).
fn su(t: i64, w: &World, r: &mut Rng, tl: &mut Timeline) {
    let host = w.linux_host(r);
    let u = w
        .users
        .iter()
        .filter(|u| u.admin)
        .nth(r.below(3))
        .unwrap_or(&w.users[0]);
    let (target, tuid) = *r.pick(&[("postgres", 113u32), ("www-data", 33), ("root", 0)]);
    let p = pid(r);
    let tty = format!("pts/{}", r.below(6));
    tl.push(syslog(
        t,
        host,
        PRI_AUTHPRIV_INFO,
        "su",
        p,
        format!("(to {target}) {} on {tty}", u.name),
    ));
    tl.push(syslog(
        t + 1,
        host,
        PRI_AUTHPRIV_INFO,
        "su",
        p,
        format!(
            "pam_unix(su-l:session): session opened for user {target}(uid={tuid}) by {}(uid={})",
            u.name, u.uid
        ),
    ));
    tl.push(syslog(
        t + r.range(2_000, 600_000) as i64,
        host,
        PRI_AUTHPRIV_INFO,
        "su",
        p,
        format!("pam_unix(su-l:session): session closed for user {target}"),
    ));
}

fn web_host<'a>(w: &'a World, r: &mut Rng) -> &'a Host {
    r.pick(&w.web)
}

fn web(t: i64, w: &World, r: &mut Rng, tl: &mut Timeline) {
    let host = web_host(w, r);
    let page = *r.pick(&PAGES);
    let (status, bytes) = match r.below(100) {
        0..=2 => (404, r.range(150, 600)),
        3..=12 => (304, 0),
        13..=14 => (301, 169),
        15 => (500, r.range(100, 400)),
        _ => (200, r.range(300, 90_000)),
    };
    let method = if page.starts_with("/api/v1/cart") && r.chance(0.4) {
        "POST"
    } else {
        "GET"
    };
    let referrer = (r.chance(0.5) && page != "/").then(|| "https://shop.example.com/".to_string());
    tl.push(access(
        t,
        host,
        Access {
            client: w.visitor(r),
            user: None,
            method,
            target: page.to_string(),
            status,
            bytes,
            referrer,
            user_agent: w.user_agent(r),
        },
    ));
}

fn win_logon(t: i64, w: &World, r: &mut Rng, tl: &mut Timeline) {
    let u = w.user(r);
    let ws = &w.workstations[u.workstation];
    // A mistyped password: one failure, then the real logon. People type
    // passwords at interactive logons, about a sixth of these, so 3 % of
    // those is 0.5 % of all: 3 % of all gave the busiest users a typo
    // every few minutes, which no person makes.
    if r.chance(0.005) {
        tl.push(logon_failed(
            t,
            ws,
            &u.name,
            "127.0.0.1",
            &ws.name,
            false,
            r,
        ));
        tl.push(logon(t + 5_000, w, ws, u, 2, "127.0.0.1", r));
        return;
    }
    if r.chance(0.5) {
        // Network logon at a DC (Kerberos) from the user's workstation.
        let dc = r.pick(&w.dcs);
        tl.push(logon(t, w, dc, u, 3, &ws.ip, r));
    } else {
        let ty = *r.pick(&[2u32, 11, 7]);
        tl.push(logon(t, w, ws, u, ty, "127.0.0.1", r));
        if u.admin {
            tl.push(win_security(
                t,
                ws,
                4672,
                json!({
                    "SubjectUserSid": w.sid(u),
                    "SubjectUserName": &*u.name,
                    "SubjectDomainName": "CORP",
                    "PrivilegeList": "SeSecurityPrivilege\n\t\t\tSeBackupPrivilege\n\t\t\tSeDebugPrivilege",
                }),
                "Special privileges assigned to new logon.",
            ));
        }
    }
    if r.chance(0.05) {
        let target = r.pick(&w.linux);
        tl.push(win_security(
            t + 900,
            ws,
            4648,
            json!({
                "SubjectUserName": &*u.name,
                "SubjectDomainName": "CORP",
                "TargetUserName": &*u.name,
                "TargetDomainName": "CORP",
                "TargetServerName": &*target.name,
                "IpAddress": &*target.ip,
                "IpPort": "445",
                "ProcessName": "C:\\Windows\\System32\\runas.exe",
            }),
            "A logon was attempted using explicit credentials.",
        ));
    }
}

fn win_process(t: i64, w: &World, r: &mut Rng, tl: &mut Timeline) {
    let u = w.user(r);
    let ws = &w.workstations[u.workstation];
    let (image, cmd, parent) = r.pick(&WIN_PROCS);
    let cmd = cmd.replace("{u}", &u.name);
    let image = image.replace("{u}", &u.name);
    let pid = r.range(1000, 20000);
    tl.push(win_security(
        t,
        ws,
        4688,
        json!({
            "SubjectUserSid": w.sid(u),
            "SubjectUserName": &*u.name,
            "SubjectDomainName": "CORP",
            "NewProcessId": format!("0x{pid:x}"),
            "NewProcessName": &image,
            "CommandLine": &cmd,
            "ParentProcessName": parent,
            "TokenElevationType": "%%1938",
            "MandatoryLabel": "S-1-16-8192",
        }),
        "A new process has been created.",
    ));
    let rec = sysmon(
        t + 1,
        ws,
        1,
        json!({
            "Image": &image,
            "CommandLine": &cmd,
            "ParentImage": parent,
            "ProcessId": pid.to_string(),
            "User": domain_user(&u.name),
            "IntegrityLevel": "Medium",
            "CurrentDirectory": format!("C:\\Users\\{}\\", u.name),
            "Hashes": format!("SHA256={:016X}{:016X}{:016X}{:016X}", r.next_u64(), r.next_u64(), r.next_u64(), r.next_u64()),
        }),
        r,
    );
    tl.push(rec);
}

fn sysmon_net(t: i64, w: &World, r: &mut Rng, tl: &mut Timeline) {
    let u = w.user(r);
    let ws = &w.workstations[u.workstation];
    let dst = w.visitor(r);
    let rec = sysmon(
        t,
        ws,
        3,
        json!({
            "Image": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
            "User": domain_user(&u.name),
            "Protocol": "tcp",
            "Initiated": "true",
            "SourceIp": &*ws.ip,
            "SourcePort": port(r).to_string(),
            "DestinationIp": &*dst,
            "DestinationPort": "443",
        }),
        r,
    );
    tl.push(rec);
}

fn sysmon_file(t: i64, w: &World, r: &mut Rng, tl: &mut Timeline) {
    let u = w.user(r);
    let ws = &w.workstations[u.workstation];
    let name = r.pick(&[
        "Downloads\\invoice_2025.pdf",
        "Documents\\report.docx",
        "AppData\\Local\\Temp\\chrome_drag1234.tmp",
        "Desktop\\budget.xlsx",
    ]);
    let rec = sysmon(
        t,
        ws,
        11,
        json!({
            "Image": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
            "User": domain_user(&u.name),
            "TargetFilename": format!("C:\\Users\\{}\\{name}", u.name),
        }),
        r,
    );
    tl.push(rec);
}

/// Customer accounts of the shop: its API's logins are theirs, not the
/// staff's. (Staff names gave the busiest employee a shop login every few
/// seconds and a failed one every minute.)
const CUSTOMERS: usize = 20_000;

fn app_login(t: i64, w: &World, r: &mut Rng, tl: &mut Timeline) {
    let host = web_host(w, r);
    let name = format!("customer{:05}", r.below(CUSTOMERS));
    let ip = w.visitor(r);
    let ua = w.user_agent(r);
    if r.chance(0.06) {
        // A mistyped password, then the retry a few seconds later.
        tl.push(app(
            t,
            host,
            "authn_login_fail",
            "failure",
            Some(&name),
            &ip,
            &ua,
            "/api/v1/session",
            format!("User {} login failed", name),
        ));
        tl.push(app(
            t + 4_000 + r.below(6_000) as i64,
            host,
            "authn_login_success",
            "success",
            Some(&name),
            &ip,
            &ua,
            "/api/v1/session",
            format!("User {} login successfully", name),
        ));
    } else if r.chance(0.03) {
        tl.push(app(
            t,
            host,
            "authz_fail",
            "failure",
            Some(&name),
            &ip,
            &ua,
            "/admin/orders",
            format!(
                "User {} attempted to access /admin/orders without permission",
                name
            ),
        ));
    } else {
        tl.push(app(
            t,
            host,
            "authn_login_success",
            "success",
            Some(&name),
            &ip,
            &ua,
            "/api/v1/session",
            format!("User {} login successfully", name),
        ));
        if r.chance(0.1) {
            tl.push(app(
                t + 2,
                host,
                "session_created",
                "success",
                Some(&name),
                &ip,
                &ua,
                "/api/v1/session",
                format!("User {} has started a new session", name),
            ));
        }
    }
}

/// An OpenSSH-style key fingerprint (43 base64 characters).
fn fingerprint(r: &mut Rng) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..43).map(|_| B64[r.below(64)] as char).collect()
}
