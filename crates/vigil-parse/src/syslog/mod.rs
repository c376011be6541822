//! Syslog: RFC 5424 (strict) and RFC 3164 / BSD syslog (lenient).
//!
//! [`parse`] picks the protocol: input that starts with `<PRI>` followed by a
//! version digit is RFC 5424, anything else is treated as RFC 3164. The two
//! parsers are deliberately different in spirit:
//!
//! * [`parse_rfc5424`] is a strict, allocation-light byte parser that follows
//!   the RFC grammar (field lengths, PRI range, timestamp validity, SD escaping)
//!   and reports errors worded like go-syslog's, with the byte column.
//! * [`parse_rfc3164`] accepts what real devices send: no PRI (`auth.log`
//!   lines), many timestamp shapes (BSD, Cisco, ISO 8601), optional hostname,
//!   optional tag. Missing years and zones come from [`crate::ParseOptions`].
//!
//! [`apply`] copies a parsed message into ECS fields of an [`Event`].
//!
//! ```
//! use vigil_parse::{syslog, ParseOptions, Event};
//! let msg = syslog::parse("<34>1 2003-10-11T22:14:15.003Z host su - ID47 - hello", &ParseOptions::default()).unwrap();
//! assert_eq!(msg.facility(), Some(4));
//! let mut ev = Event::new();
//! syslog::apply(&msg, &mut ev);
//! assert_eq!(ev.get_str("host.name"), Some("host"));
//! ```
//!
//! [`Event`]: vigil_event::Event

mod ecs;
mod rfc3164;
mod rfc5424;

use chrono::{DateTime, FixedOffset};

pub use ecs::apply;
pub use rfc3164::parse_rfc3164;
pub use rfc5424::parse_rfc5424;

/// Which syslog wire format a message was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RFC 5424 (`<PRI>VERSION TIMESTAMP HOST APP PROCID MSGID SD MSG`).
    Rfc5424,
    /// RFC 3164 / BSD syslog (`<PRI>Mmm dd hh:mm:ss HOST TAG: MSG`), leniently.
    Rfc3164,
}

impl Protocol {
    /// The `log.format` value for this protocol (`rfc5424` / `rfc3164`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rfc5424 => "rfc5424",
            Protocol::Rfc3164 => "rfc3164",
        }
    }
}

/// One RFC 5424 structured data element (`[id k="v" …]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    /// The SD-ID (`exampleSDID@32473`, `origin`, …).
    pub id: String,
    /// Parameters in the order they appear, with escapes (`\"`, `\\`, `\]`) resolved.
    pub params: Vec<(String, String)>,
}

/// A parsed syslog message. `None` means the field was absent or the nil value `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage {
    /// The wire format the message was read as.
    pub protocol: Protocol,
    /// PRI value (0..=191); `None` when the line had no `<PRI>`.
    pub priority: Option<u8>,
    /// RFC 5424 VERSION (1..=999); always `None` for RFC 3164.
    pub version: Option<u16>,
    /// Event time, with the offset it was written in (or resolved to).
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// HOSTNAME.
    pub hostname: Option<String>,
    /// APP-NAME (RFC 5424) or the TAG name (RFC 3164).
    pub appname: Option<String>,
    /// PROCID (RFC 5424) or the `[pid]` of an RFC 3164 tag.
    pub procid: Option<String>,
    /// MSGID (RFC 5424 only).
    pub msgid: Option<String>,
    /// Structured data; `None` for the nil value `-` (or none present in RFC 3164).
    pub structured_data: Option<Vec<SdElement>>,
    /// MSG, with a leading UTF-8 BOM removed.
    pub message: Option<String>,
}

impl SyslogMessage {
    /// An empty message of the given protocol; parsers fill it in.
    pub(crate) fn empty(protocol: Protocol) -> Self {
        Self {
            protocol,
            priority: None,
            version: None,
            timestamp: None,
            hostname: None,
            appname: None,
            procid: None,
            msgid: None,
            structured_data: None,
            message: None,
        }
    }

    /// Facility code (`priority / 8`).
    pub fn facility(&self) -> Option<u8> {
        self.priority.map(|p| p / 8)
    }

    /// Severity code (`priority % 8`).
    pub fn severity(&self) -> Option<u8> {
        self.priority.map(|p| p % 8)
    }
}

/// Why a line could not be parsed, with the byte column (0-based) where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} [col {column}]")]
pub struct SyslogError {
    /// 0-based byte offset into the input.
    pub column: usize,
    /// What was expected there.
    pub message: String,
}

impl SyslogError {
    pub(crate) fn new(column: usize, message: impl Into<String>) -> Self {
        Self {
            column,
            message: message.into(),
        }
    }
}

/// Parses a syslog line, choosing the protocol from its start.
///
/// Surrounding whitespace and NULs (framing leftovers) are trimmed first.
/// `<N>D…` (PRI followed by a version digit) is read as RFC 5424. If that
/// fails the line is re-read as RFC 3164, because devices such as Cisco IOS
/// put a sequence number right after the PRI (`<189>27: *Mar 1 …`), which
/// looks like a version. Before that, a line whose RFC 5424 header is fine
/// but whose structured data is malformed keeps its header, with the SD text
/// as part of the message. As RFC 3164 accepts any line with a PRI, a broken
/// RFC 5424 line therefore comes back as PRI plus free text rather than an
/// error. A line starting `1 ` that is a complete RFC 5424 message without
/// its PRI (as some file templates write it) is also read as RFC 5424.
/// Everything else is RFC 3164.
pub fn parse(input: &str, opts: &crate::ParseOptions) -> Result<SyslogMessage, SyslogError> {
    let s = input.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let b = s.as_bytes();
    if rfc5424::looks_like_5424(b) {
        return parse_rfc5424(s)
            .or_else(|e| rfc5424::parse_lenient_sd(s).map_err(|_| e))
            .or_else(|e| parse_rfc3164(s, opts).map_err(|_| e));
    }
    if b.starts_with(b"1 ") {
        if let Ok(m) = rfc5424::parse_without_pri(s) {
            return Ok(m);
        }
    }
    parse_rfc3164(s, opts)
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The conventional keyword for a facility code (`4` → `auth`); `unknown` past 23.
pub fn facility_name(code: u8) -> &'static str {
    FACILITIES
        .get(usize::from(code))
        .copied()
        .unwrap_or("unknown")
}

/// The conventional keyword for a severity code (`6` → `info`); `unknown` past 7.
pub fn severity_name(code: u8) -> &'static str {
    SEVERITIES
        .get(usize::from(code))
        .copied()
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch() {
        let o = crate::ParseOptions::default();
        assert_eq!(
            parse("<13>1 - - - - - - x\r\n", &o).unwrap().protocol,
            Protocol::Rfc5424
        );
        let m = parse("<189>27: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: hi", &o).unwrap();
        assert_eq!((m.protocol, m.priority), (Protocol::Rfc3164, Some(189)));
        let m = parse("1 2020-05-22T14:59:09.250-03:00 host app 6589 - - text", &o).unwrap();
        assert_eq!(
            (m.protocol, m.priority, m.procid.as_deref()),
            (Protocol::Rfc5424, None, Some("6589"))
        );
        assert_eq!(
            parse("Jan 12 06:30:00 h sshd[1]: x", &o).unwrap().protocol,
            Protocol::Rfc3164
        );
        assert!(parse("just text", &o).is_err());
        let m = parse("<13>1 - host app - - [bad x] text", &o).unwrap();
        assert_eq!(
            (m.protocol, m.hostname.as_deref()),
            (Protocol::Rfc5424, Some("host"))
        );
        assert_eq!(
            (m.structured_data, m.message.as_deref()),
            (None, Some("[bad x] text"))
        );
    }

    #[test]
    fn names() {
        assert_eq!(facility_name(0), "kern");
        assert_eq!(facility_name(10), "authpriv");
        assert_eq!(facility_name(23), "local7");
        assert_eq!(facility_name(24), "unknown");
        assert_eq!(severity_name(3), "err");
        assert_eq!(severity_name(8), "unknown");
    }

    #[test]
    fn error_display() {
        let e = SyslogError::new(
            3,
            "expecting a priority value in the range 1-191 or equal to 0",
        );
        assert_eq!(
            e.to_string(),
            "expecting a priority value in the range 1-191 or equal to 0 [col 3]"
        );
    }
}
