//! Mapping of a parsed syslog message onto ECS fields.

use serde_json::{Map, Value};
use vigil_event::{fields, Event};

use super::{facility_name, severity_name, SdElement, SyslogMessage};

/// Copies a parsed syslog message into ECS fields of `ev`.
///
/// Sets, when present in the message: `log.syslog.priority`,
/// `log.syslog.facility.{code,name}`, `log.syslog.severity.{code,name}`,
/// `log.syslog.version`, `log.syslog.{hostname,appname,procid,msgid}`,
/// `log.syslog.structured_data`, `host.name`, `process.name`, `process.pid`
/// (only when PROCID is a number), `message`, `@timestamp` (UTC),
/// `event.severity` (the syslog severity code) and always `log.format`
/// (`rfc5424` / `rfc3164`).
///
/// Structured data becomes `{SD-ID: {PARAM: value}}`. A PARAM-NAME that occurs
/// more than once in an element (RFC 5424 allows it, e.g. several `ip`
/// values in `[origin …]`) becomes an array of its values in order, so no
/// value is lost; single occurrences stay plain strings.
pub fn apply(msg: &SyslogMessage, ev: &mut Event) {
    ev.set(fields::LOG_FORMAT, msg.protocol.as_str());
    if let Some(pri) = msg.priority {
        let (facility, severity) = (pri / 8, pri % 8);
        ev.set(fields::LOG_SYSLOG_PRIORITY, pri);
        ev.set(fields::LOG_SYSLOG_FACILITY_CODE, facility);
        ev.set(fields::LOG_SYSLOG_FACILITY_NAME, facility_name(facility));
        ev.set(fields::LOG_SYSLOG_SEVERITY_CODE, severity);
        ev.set(fields::LOG_SYSLOG_SEVERITY_NAME, severity_name(severity));
        ev.set(fields::EVENT_SEVERITY, severity);
    }
    if let Some(v) = msg.version {
        ev.set(fields::LOG_SYSLOG_VERSION, v);
    }
    if let Some(t) = msg.timestamp {
        ev.set_timestamp(t.to_utc());
    }
    if let Some(h) = &msg.hostname {
        ev.set(fields::LOG_SYSLOG_HOSTNAME, h.as_str());
        ev.set(fields::HOST_NAME, h.as_str());
    }
    if let Some(a) = &msg.appname {
        ev.set(fields::LOG_SYSLOG_APPNAME, a.as_str());
        ev.set(fields::PROCESS_NAME, a.as_str());
    }
    if let Some(p) = &msg.procid {
        ev.set(fields::LOG_SYSLOG_PROCID, p.as_str());
        if let Ok(pid) = p.parse::<u32>() {
            ev.set(fields::PROCESS_PID, pid);
        }
    }
    if let Some(m) = &msg.msgid {
        ev.set(fields::LOG_SYSLOG_MSGID, m.as_str());
    }
    if let Some(sd) = &msg.structured_data {
        ev.set(fields::LOG_SYSLOG_STRUCTURED_DATA, sd_object(sd));
    }
    if let Some(m) = &msg.message {
        ev.set(fields::MESSAGE, m.as_str());
    }
}

fn sd_object(sd: &[SdElement]) -> Value {
    let mut out = Map::new();
    for e in sd {
        let mut params = Map::new();
        for (k, v) in &e.params {
            let v = Value::String(v.clone());
            match params.get_mut(k) {
                None => {
                    params.insert(k.clone(), v);
                }
                Some(Value::Array(items)) => items.push(v),
                Some(first) => {
                    let old = first.take();
                    *first = Value::Array(vec![old, v]);
                }
            }
        }
        out.insert(e.id.clone(), Value::Object(params));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::super::parse_rfc5424;
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_all_fields() {
        let m = parse_rfc5424(
            "<38>1 2024-03-01T10:00:00.5+02:00 bastion sshd 4721 AUTH [origin ip=\"10.0.0.1\" ip=\"10.0.0.2\" sw=\"x\"][b] Failed password",
        )
        .unwrap();
        let mut ev = Event::new();
        apply(&m, &mut ev);
        assert_eq!(ev.get_i64("log.syslog.priority"), Some(38));
        assert_eq!(ev.get_i64("log.syslog.facility.code"), Some(4));
        assert_eq!(ev.get_str("log.syslog.facility.name"), Some("auth"));
        assert_eq!(ev.get_i64("log.syslog.severity.code"), Some(6));
        assert_eq!(ev.get_str("log.syslog.severity.name"), Some("info"));
        assert_eq!(ev.get_i64("event.severity"), Some(6));
        assert_eq!(ev.get_i64("log.syslog.version"), Some(1));
        assert_eq!(ev.get_str("@timestamp"), Some("2024-03-01T08:00:00.500Z"));
        assert_eq!(ev.get_str("host.name"), Some("bastion"));
        assert_eq!(ev.get_str("log.syslog.hostname"), Some("bastion"));
        assert_eq!(ev.get_str("process.name"), Some("sshd"));
        assert_eq!(ev.get("process.pid"), Some(&json!(4721)));
        assert_eq!(ev.get_str("log.syslog.procid"), Some("4721"));
        assert_eq!(ev.get_str("log.syslog.msgid"), Some("AUTH"));
        assert_eq!(ev.get_str("message"), Some("Failed password"));
        assert_eq!(ev.get_str("log.format"), Some("rfc5424"));
        assert_eq!(
            ev.get("log.syslog.structured_data"),
            Some(&json!({"origin": {"ip": ["10.0.0.1", "10.0.0.2"], "sw": "x"}, "b": {}}))
        );
    }

    #[test]
    fn non_numeric_procid_and_nil_fields() {
        let m = parse_rfc5424("<13>1 - - app worker-3 - - x").unwrap();
        let mut ev = Event::new();
        apply(&m, &mut ev);
        assert_eq!(ev.get_str("log.syslog.procid"), Some("worker-3"));
        assert!(!ev.contains("process.pid"));
        assert!(!ev.contains("host.name"));
        assert!(!ev.contains("@timestamp"));
        assert!(!ev.contains("log.syslog.structured_data"));
    }
}
