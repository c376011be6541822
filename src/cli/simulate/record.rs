//! One generated log record and how it is written: in the native format of
//! its source, or as one flat JSON object (`--format ndjson`).

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// The kind of log a record imitates; named in the labels file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Unix authentication log (sshd, sudo, su, PAM, shadow-utils) over syslog.
    Auth,
    /// nginx/Apache combined access log.
    Web,
    /// Windows Security channel.
    WinSecurity,
    /// Sysmon operational channel.
    Sysmon,
    /// Application JSON with OWASP logging-vocabulary actions.
    App,
}

impl Source {
    /// The name used in labels and statistics.
    pub fn name(self) -> &'static str {
        match self {
            Source::Auth => "auth",
            Source::Web => "web",
            Source::WinSecurity => "windows_security",
            Source::Sysmon => "sysmon",
            Source::App => "app",
        }
    }
}

/// What a record says, per source shape.
#[derive(Debug, Clone)]
pub enum Body {
    /// A syslog message: priority, program, pid, free text.
    Syslog {
        pri: u8,
        app: &'static str,
        pid: u32,
        msg: String,
    },
    /// A combined-format access log entry.
    Access(Access),
    /// A flat JSON object (Windows events, application logs), without the time.
    Json(Map<String, Value>),
}

/// The fields of one access-log line.
#[derive(Debug, Clone)]
pub struct Access {
    /// Client address (`%h`).
    pub client: Arc<str>,
    /// Authenticated user (`%u`), `-` when `None`.
    pub user: Option<Arc<str>>,
    pub method: &'static str,
    /// Request target: path and query string, already URL-encoded.
    pub target: String,
    pub status: u16,
    /// Response body size.
    pub bytes: u64,
    pub referrer: Option<String>,
    pub user_agent: Arc<str>,
}

/// One generated record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Simulated event time, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The host that logged it.
    pub host: Arc<str>,
    pub source: Source,
    pub body: Body,
}

/// Output flavour chosen with `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Each source in its own format: RFC 5424 syslog, combined access log, flat JSON.
    Native,
    /// Every record as one flat JSON object with ECS-style dotted keys.
    Ndjson,
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// RFC 3339 with milliseconds, as every JSON record and the labels carry it.
pub fn rfc3339(ms: i64) -> String {
    time(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl Record {
    /// Appends the record (without newline) to `out` in the given format.
    pub fn render(&self, format: Format, out: &mut String) {
        match (format, &self.body) {
            (Format::Native, Body::Syslog { pri, app, pid, msg }) => {
                // RFC 5424 rather than 3164: it carries the year and
                // milliseconds, so a replayed file keeps exact times.
                let _ = write!(
                    out,
                    "<{pri}>1 {} {} {app} {pid} - - {msg}",
                    rfc3339(self.time_ms),
                    self.host
                );
            }
            (Format::Native, Body::Access(a)) => {
                let _ = write!(
                    out,
                    "{} - {} [{}] \"{} {} HTTP/1.1\" {} {} \"{}\" \"{}\"",
                    a.client,
                    a.user.as_deref().unwrap_or("-"),
                    time(self.time_ms).format("%d/%b/%Y:%H:%M:%S +0000"),
                    a.method,
                    a.target,
                    a.status,
                    a.bytes,
                    a.referrer.as_deref().unwrap_or("-"),
                    a.user_agent
                );
            }
            (_, Body::Json(m)) => {
                let mut m = m.clone();
                let t = rfc3339(self.time_ms);
                if matches!(self.source, Source::WinSecurity | Source::Sysmon) {
                    m.insert("TimeCreated".into(), Value::String(t.clone()));
                }
                m.insert("@timestamp".into(), Value::String(t));
                out.push_str(&Value::Object(m).to_string());
            }
            (Format::Ndjson, Body::Syslog { pri, app, pid, msg }) => {
                let v = json!({
                    "@timestamp": rfc3339(self.time_ms),
                    "host.name": &*self.host,
                    "process.name": app,
                    "process.pid": pid,
                    "log.syslog.priority": pri,
                    "message": msg,
                });
                out.push_str(&v.to_string());
            }
            (Format::Ndjson, Body::Access(a)) => {
                let mut v = json!({
                    "@timestamp": rfc3339(self.time_ms),
                    "host.name": &*self.host,
                    "event.dataset": "http.access",
                    "event.category": ["web"],
                    "event.type": ["access"],
                    "event.outcome": if a.status < 400 { "success" } else { "failure" },
                    "source.ip": &*a.client,
                    "http.request.method": a.method,
                    "url.original": a.target,
                    "http.version": "1.1",
                    "http.response.status_code": a.status,
                    "http.response.body.bytes": a.bytes,
                    "user_agent.original": &*a.user_agent,
                });
                if let Some(u) = &a.user {
                    v["user.name"] = json!(&**u);
                }
                if let Some(r) = &a.referrer {
                    v["http.request.referrer"] = json!(r);
                }
                out.push_str(&v.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(body: Body) -> Record {
        Record {
            time_ms: 1_736_150_400_123,
            host: "web01".into(),
            source: Source::Auth,
            body,
        }
    }

    #[test]
    fn syslog_is_rfc5424_and_decodes() {
        let r = rec(Body::Syslog {
            pri: 38,
            app: "sshd",
            pid: 4242,
            msg: "Failed password for root from 203.0.113.9 port 52144 ssh2".into(),
        });
        let mut s = String::new();
        r.render(Format::Native, &mut s);
        assert_eq!(
            s,
            "<38>1 2025-01-06T08:00:00.123Z web01 sshd 4242 - - Failed password for root from 203.0.113.9 port 52144 ssh2"
        );
        let ev = vigil_parse::parse_line(s.as_bytes(), &Default::default());
        assert_eq!(ev.get_str("event.action"), Some("ssh_login"));
        assert_eq!(ev.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(ev.get_str("host.name"), Some("web01"));
    }

    #[test]
    fn access_line_decodes() {
        let r = rec(Body::Access(Access {
            client: "198.51.100.4".into(),
            user: None,
            method: "GET",
            target: "/search?q=%3Cscript%3E".into(),
            status: 404,
            bytes: 153,
            referrer: None,
            user_agent: "curl/8.5.0".into(),
        }));
        for f in [Format::Native, Format::Ndjson] {
            let mut s = String::new();
            r.render(f, &mut s);
            let ev = vigil_parse::parse_line(s.as_bytes(), &Default::default());
            assert_eq!(ev.get_str("source.ip"), Some("198.51.100.4"), "{s}");
            assert_eq!(ev.get_i64("http.response.status_code"), Some(404), "{s}");
        }
    }
}
