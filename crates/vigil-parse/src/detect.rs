//! Format detection: one received message in, one [`Event`] out.
//!
//! The first bytes decide which parser runs, so a line costs one parser
//! attempt in the common cases: `{` is JSON, `CEF:` is CEF, `LEEF:` is LEEF, and everything
//! else is offered to the syslog parser (which refuses lines with neither a
//! `<PRI>` nor a leading timestamp). A Linux audit record (`type=… msg=audit(…)`)
//! is recognised before syslog, because logfmt would otherwise claim it.
//! What syslog refuses is tried as an
//! access log (only when it starts like an address), then logfmt (only when
//! it has an `=`), and is otherwise plain text. A syslog message body is
//! looked at again for CEF, LEEF, audit records and access logs. Finally the
//! application decoders ([`crate::decoders`]) read the `message` (not of
//! audit records, which are already decoded).

use std::borrow::Cow;

use serde_json::Value;
use vigil_event::{fields, Event, EventError};

use crate::formats::{access_log, auditd, cef, json, leef, logfmt};
use crate::{decoders, syslog, KeepOriginal, ParseOptions};

/// `log.format` of lines no format claimed.
const FORMAT_TEXT: &str = "text";

/// Parses one received message into an event. Never fails.
///
/// The line is cut to `opts.max_message_bytes` (at a char boundary, flagged
/// `vigil.truncated`), decoded as UTF-8 (lossily, flagged
/// `vigil.invalid_utf8`), and one trailing line terminator (`\n`, `\r\n` or
/// `\r`) is dropped. `event.original` keeps that text whatever the format; a
/// line that could not be parsed as the format it announced gets
/// `vigil.parse_error`. `vigil.seq`, `vigil.received_at` and `vigil.input`
/// are left to the caller.
pub fn parse_line(line: &[u8], opts: &ParseOptions) -> Event {
    let line = strip_terminator(line);
    let (line, truncated) = truncate(line, opts.max_message_bytes);
    // The standard validator's ASCII fast path is several times quicker
    // than the lossy decoder's byte loop, and almost every line is valid.
    let text = match std::str::from_utf8(line) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(line),
    };
    let invalid_utf8 = matches!(text, Cow::Owned(_));

    let mut ev = parse_text(&text, opts);

    let parsed_whole = opts.keep_original == KeepOriginal::Unparsed
        && !truncated
        && !invalid_utf8
        && ev.get_str(fields::LOG_FORMAT) == Some("json")
        && !ev.contains(fields::VIGIL_PARSE_ERROR);
    if !parsed_whole {
        ev.set(fields::EVENT_ORIGINAL, text.into_owned());
    }
    if truncated {
        ev.set(fields::VIGIL_TRUNCATED, true);
    }
    if invalid_utf8 {
        ev.set(fields::VIGIL_INVALID_UTF8, true);
    }
    ev
}

/// Normalizes one JSON object received over a JSON input.
///
/// Dotted top-level keys are expanded ([`Event::from_json`]); the object may
/// nest at most `opts.max_json_depth` levels (counted after that expansion)
/// and hold at most `opts.max_fields` leaf fields. `event.original` is set
/// to the compact JSON unless the sender supplied one; `@timestamp` is taken
/// from `@timestamp`, `timestamp`, `time` or `ts` (RFC 3339 or epoch
/// s/ms/µs/ns). When the object names a program (`process.name` or
/// `log.syslog.appname`) and has a `message`, the application decoders run.
pub fn parse_json(value: Value, opts: &ParseOptions) -> Result<Event, EventError> {
    parse_json_object(value, opts, opts.keep_original == KeepOriginal::Always)
}

/// [`parse_json`], setting `event.original` from the object only when
/// `original` says so (a line's caller sets it from the line itself).
fn parse_json_object(
    value: Value,
    opts: &ParseOptions,
    original: bool,
) -> Result<Event, EventError> {
    let mut ev = Event::from_json(value, opts.max_json_depth)?;
    // `vigil.*` is Vigil's own bookkeeping (sequence, input, parse flags):
    // a sender must not be able to forge any of it.
    ev.remove("vigil");
    if json::depth(ev.as_map()) > opts.max_json_depth {
        return Err(EventError::TooDeep {
            limit: opts.max_json_depth,
        });
    }
    if ev.field_count() > opts.max_fields {
        return Err(EventError::TooManyFields {
            limit: opts.max_fields,
        });
    }
    if original {
        json::keep_original(&mut ev);
    }
    json::normalize_timestamp(&mut ev, opts);
    ev.set_default(fields::LOG_FORMAT, "json");
    let has_program = ev.contains(fields::PROCESS_NAME) || ev.contains(fields::LOG_SYSLOG_APPNAME);
    if has_program && ev.contains(fields::MESSAGE) {
        decoders::decode(&mut ev);
    }
    Ok(ev)
}

/// Detects the format of one decoded line and parses it.
fn parse_text(text: &str, opts: &ParseOptions) -> Event {
    let trimmed = text.trim_start();
    if trimmed.trim_end().is_empty() {
        let mut ev = Event::new();
        ev.set(fields::VIGIL_PARSE_ERROR, "empty message");
        ev.set(fields::LOG_FORMAT, FORMAT_TEXT);
        return ev;
    }
    if trimmed.starts_with('{') {
        return parse_json_line(text, opts);
    }
    if trimmed.starts_with("CEF:") {
        let mut ev = Event::new();
        parse_cef(trimmed, &mut ev, opts);
        return ev;
    }
    if trimmed.starts_with("LEEF:") {
        let mut ev = Event::new();
        parse_leef(trimmed, &mut ev, opts);
        return ev;
    }
    if auditd::looks_like(trimmed) {
        let mut ev = Event::new();
        if auditd::parse_into(trimmed, &mut ev) {
            return ev;
        }
    }

    let mut ev = Event::new();
    match syslog::parse(text, opts) {
        Ok(msg) => {
            syslog::apply(&msg, &mut ev);
            if let Some(body) = msg.message.as_deref() {
                parse_syslog_body(body, msg.appname.as_deref(), &mut ev, opts);
            }
        }
        Err(e) if trimmed.starts_with('<') => {
            ev.set(fields::VIGIL_PARSE_ERROR, format!("syslog: {e}"));
            text_event(text, &mut ev);
        }
        Err(_) => {
            let parsed = (starts_like_address(trimmed) && access_log::parse_into(trimmed, &mut ev))
                || parse_logfmt(trimmed, &mut ev, opts);
            if !parsed {
                text_event(text, &mut ev);
            }
        }
    }
    if ev.get_str(fields::LOG_FORMAT) != Some(auditd::FORMAT) {
        decoders::decode(&mut ev);
    }
    ev
}

/// Programs whose syslog messages are access-log lines.
fn is_web_server(app: &str) -> bool {
    matches!(
        app,
        "nginx" | "apache" | "apache2" | "httpd" | "lighttpd" | "caddy"
    )
}

/// Formats carried inside a syslog message: CEF, and access logs that web
/// servers send through syslog (`access_log syslog:server=…` in nginx).
fn parse_syslog_body(body: &str, app: Option<&str>, ev: &mut Event, opts: &ParseOptions) {
    let body = body.trim_start();
    if body.starts_with("CEF:") {
        parse_cef(body, ev, opts);
    } else if body.starts_with("LEEF:") {
        parse_leef(body, ev, opts);
    } else if auditd::looks_like(body) {
        // audisp-syslog, the kernel's `audit:` lines, AUOMS. The syslog
        // program and PID are the forwarder's; the record names the
        // audited process (kept in `log.syslog.*`).
        let (name, pid) = (
            ev.remove(fields::PROCESS_NAME),
            ev.remove(fields::PROCESS_PID),
        );
        if !auditd::parse_into(body, ev) {
            if let Some(n) = name {
                ev.set(fields::PROCESS_NAME, n);
            }
            if let Some(p) = pid {
                ev.set(fields::PROCESS_PID, p);
            }
        }
    } else if (app.is_some_and(is_web_server) || starts_like_address(body))
        && access_log::parse_into(body, ev)
    {
        // The syslog `message` stays: it is the request line as the server logged it.
    }
}

/// CEF at the top level or inside syslog; a broken header is reported and
/// the text kept as the message.
fn parse_cef(s: &str, ev: &mut Event, opts: &ParseOptions) {
    match cef::parse(s) {
        Ok(c) => {
            // Inside syslog the message was the whole CEF text; CEF's own
            // `msg` or Name says it better.
            ev.remove(fields::MESSAGE);
            if cef::apply(&c, ev, opts) {
                ev.set(fields::VIGIL_TRUNCATED, true);
            }
        }
        Err(e) => {
            ev.set(fields::VIGIL_PARSE_ERROR, format!("cef: {e}"));
            ev.set_default(fields::MESSAGE, s);
            ev.set(fields::LOG_FORMAT, cef::FORMAT);
        }
    }
}

/// LEEF at the top level or inside syslog; a broken header is reported and
/// the text kept as the message.
fn parse_leef(s: &str, ev: &mut Event, opts: &ParseOptions) {
    match leef::parse(s) {
        Some(l) => {
            if leef::apply(&l, ev, opts) {
                ev.set(fields::VIGIL_TRUNCATED, true);
            }
        }
        None => {
            ev.set(fields::VIGIL_PARSE_ERROR, "leef: incomplete header");
            ev.set_default(fields::MESSAGE, s);
            ev.set(fields::LOG_FORMAT, leef::FORMAT);
        }
    }
}

fn parse_logfmt(s: &str, ev: &mut Event, opts: &ParseOptions) -> bool {
    if !s.contains('=') {
        return false;
    }
    match logfmt::parse(s) {
        Some(pairs) => {
            if logfmt::apply(pairs, ev, opts) {
                ev.set(fields::VIGIL_TRUNCATED, true);
            }
            true
        }
        None => false,
    }
}

/// A JSON object on one line; invalid JSON is kept as text with serde's
/// message (which names line and column) as the parse error.
fn parse_json_line(text: &str, opts: &ParseOptions) -> Event {
    let err = match serde_json::from_str::<Value>(text) {
        // `parse_line` sets `event.original` from the line.
        Ok(v) => match parse_json_object(v, opts, false) {
            Ok(ev) => return ev,
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    let mut ev = Event::new();
    ev.set(fields::VIGIL_PARSE_ERROR, format!("json: {err}"));
    ev.set(fields::MESSAGE, text);
    ev.set(fields::LOG_FORMAT, "json");
    ev
}

/// A line no format claimed: the whole text is the message.
fn text_event(text: &str, ev: &mut Event) {
    ev.set(fields::MESSAGE, text);
    ev.set(fields::LOG_FORMAT, FORMAT_TEXT);
}

/// Whether the line starts with something that could be an IPv4/IPv6
/// address or host name followed by a space — the access-log shape — so the
/// scanner is not run on prose.
fn starts_like_address(s: &str) -> bool {
    let b = s.as_bytes();
    match memchr::memchr(b' ', b) {
        Some(sp) if sp > 0 => {
            b[..sp]
                .iter()
                .all(|c| c.is_ascii_hexdigit() || matches!(c, b'.' | b':'))
                && memchr::memchr(b'[', &b[sp..]).is_some()
        }
        _ => false,
    }
}

/// Drops one line terminator: `\r\n`, `\n` or `\r`.
fn strip_terminator(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Cuts `line` to at most `max` bytes without splitting a UTF-8 sequence.
fn truncate(line: &[u8], max: usize) -> (&[u8], bool) {
    if line.len() <= max {
        return (line, false);
    }
    let mut end = max;
    // Back off over continuation bytes (10xxxxxx) to the start of the
    // sequence the cut would split; at most 3 steps in valid UTF-8.
    while end > 0 && max - end < 4 && (line[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    if max - end >= 4 {
        // Not UTF-8 here anyway; lossy decoding will replace it.
        end = max;
    }
    (&line[..end], true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(line: &str) -> Event {
        parse_line(line.as_bytes(), &ParseOptions::default())
    }

    #[test]
    fn syslog_sshd_failure() {
        let line = "<38>Jan 12 06:30:00 bastion sshd[4721]: Failed password for root from 203.0.113.9 port 52144 ssh2";
        let e = p(line);
        assert_eq!(e.get_str("log.format"), Some("rfc3164"));
        assert_eq!(e.get_str("host.name"), Some("bastion"));
        assert_eq!(e.get_str("process.name"), Some("sshd"));
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_str("event.action"), Some("ssh_login"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("event.original"), Some(line));
        assert!(!e.contains("vigil.parse_error"));
        assert!(!e.contains("vigil.seq"));
        assert!(!e.contains("vigil.received_at"));
        assert!(!e.contains("vigil.input"));
    }

    #[test]
    fn auth_log_line_without_pri() {
        let e = p("Jan 12 06:31:02 bastion sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id\n");
        assert_eq!(e.get_str("event.action"), Some("sudo_command"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("process.command_line"), Some("/usr/bin/id"));
        assert_eq!(
            e.get_str("event.original"),
            Some("Jan 12 06:31:02 bastion sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id")
        );
    }

    #[test]
    fn rfc5424_sshd_session() {
        let e = p("<86>1 2024-01-12T06:30:00.123Z bastion sshd-session 4721 - - Accepted publickey for alice from 198.51.100.7 port 50122 ssh2: ED25519 SHA256:abc\r\n");
        assert_eq!(e.get_str("log.format"), Some("rfc5424"));
        assert_eq!(e.get_str("event.action"), Some("ssh_login"));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        assert_eq!(
            e.get_str("system.auth.ssh.signature"),
            Some("ED25519 SHA256:abc")
        );
        assert_eq!(e.get_str("@timestamp"), Some("2024-01-12T06:30:00.123Z"));
    }

    #[test]
    fn broken_pri_is_a_parse_error() {
        let e = p("<999>oops");
        assert!(e
            .get_str("vigil.parse_error")
            .unwrap()
            .starts_with("syslog: "));
        assert_eq!(e.get_str("message"), Some("<999>oops"));
        assert_eq!(e.get_str("log.format"), Some("text"));
    }

    #[test]
    fn json_line() {
        let e = p(
            r#"{"ts":1705041000123,"message":"Invalid user oracle from 45.95.147.10 port 39512","process.name":"sshd"}"#,
        );
        assert_eq!(e.get_str("log.format"), Some("json"));
        assert_eq!(e.get_str("@timestamp"), Some("2024-01-12T06:30:00.123Z"));
        assert_eq!(e.get_str("event.action"), Some("ssh_invalid_user"));
        assert_eq!(e.get_str("process.name"), Some("sshd"));
    }

    #[test]
    fn invalid_json_keeps_line() {
        let e = p(r#"{"a": 1,}"#);
        let err = e.get_str("vigil.parse_error").unwrap();
        assert!(
            err.starts_with("json: ") && err.contains("column 9"),
            "{err}"
        );
        assert_eq!(e.get_str("message"), Some(r#"{"a": 1,}"#));
        assert_eq!(e.get_str("event.original"), Some(r#"{"a": 1,}"#));
        let e = p(&format!("{}1{}", "{\"a\":".repeat(40), "}".repeat(40)));
        assert!(e
            .get_str("vigil.parse_error")
            .unwrap()
            .contains("nesting deeper than 32"));
    }

    #[test]
    fn cef_plain_and_in_syslog() {
        let e = p("CEF:0|Fortinet|FortiGate|7.2|0000000013|traffic denied|5|src=203.0.113.9 dst=10.0.0.5 dpt=22 act=deny");
        assert_eq!(e.get_str("log.format"), Some("cef"));
        assert_eq!(e.get_str("observer.vendor"), Some("Fortinet"));
        assert_eq!(e.get_str("message"), Some("traffic denied"));
        assert_eq!(e.get_i64("destination.port"), Some(22));
        let e = p("<134>Jan 12 06:30:00 fw01 CEF:0|Fortinet|FortiGate|7.2|13|traffic denied|7|src=203.0.113.9 act=deny");
        assert_eq!(e.get_str("log.format"), Some("cef"));
        assert_eq!(e.get_str("host.name"), Some("fw01"));
        assert_eq!(e.get_str("event.code"), Some("13"));
        assert_eq!(e.get_i64("event.severity"), Some(7));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_str("message"), Some("traffic denied"));
        let e = p("CEF:0|broken");
        assert_eq!(
            e.get_str("vigil.parse_error"),
            Some("cef: CEF header has 2 of 7 fields")
        );
        assert_eq!(e.get_str("message"), Some("CEF:0|broken"));
    }

    #[test]
    fn leef_in_syslog() {
        let e = p("<13>Jan 12 06:30:00 qr01 LEEF:1.0|Microsoft|MSExchange|2016|15345|src=10.50.1.1\tusrName=bob");
        assert_eq!(e.get_str("log.format"), Some("leef"));
        assert_eq!(e.get_str("user.name"), Some("bob"));
        assert_eq!(e.get_str("host.name"), Some("qr01"));
        let e = p("LEEF:1.0|x");
        assert_eq!(
            e.get_str("vigil.parse_error"),
            Some("leef: incomplete header")
        );
    }

    #[test]
    fn access_logs() {
        let line = r#"203.0.113.9 - - [12/Jan/2024:06:30:00 +0000] "GET /wp-login.php HTTP/1.1" 404 153 "-" "Mozilla/5.0""#;
        let e = p(line);
        assert_eq!(e.get_str("log.format"), Some("clf"));
        assert_eq!(e.get_str("url.path"), Some("/wp-login.php"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("@timestamp"), Some("2024-01-12T06:30:00Z"));
        assert!(!e.contains("message"));
        let e = p(&format!("<190>Jan 12 06:30:00 web01 nginx: {line}"));
        assert_eq!(e.get_str("log.format"), Some("clf"));
        assert_eq!(e.get_str("host.name"), Some("web01"));
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_i64("http.response.status_code"), Some(404));
        assert_eq!(e.get_str("message"), Some(line));
    }

    #[test]
    fn audit_records_raw_and_in_syslog() {
        let rec = r#"type=EXECVE msg=audit(1604996384.965:93777): argc=4 a0="dd" a1="if=/dev/zero" a2="bs=1" a3="count=1""#;
        let e = p(rec);
        assert_eq!(e.get_str("log.format"), Some("auditd"));
        assert_eq!(e.get_str("event.module"), Some("auditd"));
        assert_eq!(
            e.get_str("process.command_line"),
            Some("dd if=/dev/zero bs=1 count=1")
        );
        assert_eq!(e.get_str("event.original"), Some(rec));
        let e = p(&format!(
            "<85>Nov 10 08:19:44 ubuntu5 audisp-syslog[812]: {rec}"
        ));
        assert_eq!(e.get_str("log.format"), Some("auditd"));
        assert_eq!(e.get_str("host.name"), Some("ubuntu5"));
        assert_eq!(e.get_str("log.syslog.appname"), Some("audisp-syslog"));
        assert!(
            !e.contains("process.pid"),
            "the forwarder's PID is not the process's"
        );
        assert_eq!(e.get_str("auditd.data.a1"), Some("if=/dev/zero"));
        let e = p("Nov 10 08:19:44 h kernel: audit: type=1300 audit(1604996384.965:9): arch=c000003e syscall=59 success=yes pid=7 comm=\"id\" exe=\"/usr/bin/id\"");
        assert_eq!(e.get_str("auditd.message_type"), Some("SYSCALL"));
        assert_eq!(e.get_i64("process.pid"), Some(7));
        // Not an audit record: still logfmt.
        let e = p("type=user msg=hello");
        assert_eq!(e.get_str("log.format"), Some("logfmt"));
    }

    #[test]
    fn logfmt_line() {
        let e = p(r#"time=2024-01-12T06:30:00Z level=info msg="user logged in" user=alice"#);
        assert_eq!(e.get_str("log.format"), Some("logfmt"));
        assert_eq!(e.get_str("message"), Some("user logged in"));
        assert_eq!(e.get_str("logfmt.user"), Some("alice"));
        assert_eq!(e.get_str("@timestamp"), Some("2024-01-12T06:30:00Z"));
    }

    #[test]
    fn plain_text() {
        let e = p("hello world, nothing to see");
        assert_eq!(e.get_str("log.format"), Some("text"));
        assert_eq!(e.get_str("message"), Some("hello world, nothing to see"));
        assert!(!e.contains("event.action"));
        // A bare auth line still decodes.
        let e = p("Failed password for root from 203.0.113.9 port 52144 ssh2");
        assert_eq!(e.get_str("event.action"), Some("ssh_login"));
    }

    #[test]
    fn empty_lines() {
        for l in ["", "\n", "\r\n", "   "] {
            let e = p(l);
            assert_eq!(
                e.get_str("vigil.parse_error"),
                Some("empty message"),
                "{l:?}"
            );
        }
    }

    #[test]
    fn truncation_and_invalid_utf8() {
        let opts = ParseOptions {
            max_message_bytes: 4,
            ..ParseOptions::default()
        };
        let e = parse_line("abcé".as_bytes(), &opts);
        assert_eq!(e.get_str("event.original"), Some("abc"));
        assert_eq!(e.get("vigil.truncated"), Some(&json!(true)));
        let e = parse_line("abcd\n".as_bytes(), &opts);
        assert!(!e.contains("vigil.truncated"));
        let e = parse_line(b"bad \xff byte", &ParseOptions::default());
        assert_eq!(e.get_str("message"), Some("bad \u{fffd} byte"));
        assert_eq!(e.get("vigil.invalid_utf8"), Some(&json!(true)));
        // Invalid bytes at the cut: no back-off past a whole sequence.
        let e = parse_line(b"\x80\x80\x80\x80\x80\x80", &opts);
        assert_eq!(e.get("vigil.truncated"), Some(&json!(true)));
    }

    #[test]
    fn terminators() {
        assert_eq!(strip_terminator(b"a\r\n"), b"a");
        assert_eq!(strip_terminator(b"a\n\n"), b"a\n");
        assert_eq!(strip_terminator(b"a\r"), b"a");
    }

    #[test]
    fn parse_json_limits_and_original() {
        let o = ParseOptions {
            max_fields: 3,
            max_json_depth: 3,
            ..ParseOptions::default()
        };
        let ev = parse_json(json!({"a": 1, "b": {"c": 2}}), &o).unwrap();
        assert_eq!(ev.get_str("event.original"), Some(r#"{"a":1,"b":{"c":2}}"#));
        assert_eq!(ev.get_str("log.format"), Some("json"));
        assert_eq!(
            parse_json(json!({"a": 1, "b": 2, "c": 3, "d": 4}), &o),
            Err(EventError::TooManyFields { limit: 3 })
        );
        assert_eq!(
            parse_json(json!({"a.b.c.d": 1}), &o),
            Err(EventError::TooDeep { limit: 3 })
        );
        let ev = parse_json(
            json!({"event": {"original": "raw"}, "time": "2024-01-12T06:30:00Z"}),
            &o,
        )
        .unwrap();
        assert_eq!(ev.get_str("event.original"), Some("raw"));
        assert_eq!(ev.get_str("@timestamp"), Some("2024-01-12T06:30:00Z"));
    }

    #[test]
    fn parse_json_runs_decoders_only_with_a_program() {
        let o = ParseOptions::default();
        let msg = "Failed password for root from 203.0.113.9 port 52144 ssh2";
        let ev = parse_json(
            json!({"message": msg, "log": {"syslog": {"appname": "sshd"}}}),
            &o,
        )
        .unwrap();
        assert_eq!(ev.get_str("event.action"), Some("ssh_login"));
        let ev = parse_json(json!({"message": msg}), &o).unwrap();
        assert!(!ev.contains("event.action"));
    }

    #[test]
    fn never_panics_on_garbage_and_mutations() {
        let samples = [
            "<38>Jan 12 06:30:00 bastion sshd[4721]: Failed password for root from 203.0.113.9 port 52144 ssh2",
            "<86>1 2024-01-12T06:30:00Z h sudo - - - alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/sh",
            r#"203.0.113.9 - - [12/Jan/2024:06:30:00 +0000] "GET / HTTP/1.1" 200 1 "-" "x""#,
            "CEF:0|a|b|c|d|e|5|src=1.2.3.4 msg=hi\\= there",
            r#"{"message":"x","process":{"name":"sshd"}}"#,
            r#"a=1 b="two words""#,
            "Jan 12 06:30:00 h su: FAILED SU (to root) alice on pts/0",
            "LEEF:2.0|V|P|1|41|^|src=10.0.1.8^usrName=bob",
            r#"type=SYSCALL msg=audit(1604994496.155:92733): arch=c000003e syscall=59 success=yes a0=558e comm="arp" exe="/usr/sbin/arp" key=(null)"#,
            "<85>Nov 10 08:19:44 h audisp-syslog: type=PROCTITLE msg=audit(1.5:7): proctitle=617270002D61",
        ];
        let opts = ParseOptions {
            max_message_bytes: 64,
            ..ParseOptions::default()
        };
        crate::mutate::for_each_mutation(&samples, 3000, 4, 0x9E37_79B9_7F4A_7C15, |line| {
            let _ = parse_line(line, &opts);
            let _ = parse_line(line, &ParseOptions::default());
        });
    }

    #[test]
    fn keep_original_unparsed_drops_it_only_for_json_parsed_whole() {
        let unparsed = ParseOptions {
            keep_original: KeepOriginal::Unparsed,
            ..ParseOptions::default()
        };
        let line = r#"{"EventID": 4625, "TargetUserName": "bob", "Computer": "DC01"}"#;
        let e = parse_line(line.as_bytes(), &unparsed);
        assert_eq!(e.get("event.original"), None);
        assert_eq!(e.get("EventID"), Some(&serde_json::json!(4625)));
        assert_eq!(e.get_str("TargetUserName"), Some("bob"));
        // The default keeps the line itself.
        let e = parse_line(line.as_bytes(), &ParseOptions::default());
        assert_eq!(e.get_str("event.original"), Some(line));
        // A sender's own copy is the sender's data: kept.
        let own = r#"{"message": "x", "event": {"original": "<13>raw"}}"#;
        let e = parse_line(own.as_bytes(), &unparsed);
        assert_eq!(e.get_str("event.original"), Some("<13>raw"));
        // Everything Vigil had to interpret, or could not take whole, keeps it.
        for keep in [
            "<38>1 2025-01-06T10:00:00Z host sshd 1 - - Failed password for root from 203.0.113.9 port 1 ssh2",
            r#"{"a": 1,}"#,
            "plain words",
            "a=1 b=2",
        ] {
            let e = parse_line(keep.as_bytes(), &unparsed);
            assert_eq!(e.get_str("event.original"), Some(keep), "{keep}");
        }
        let cut = ParseOptions {
            max_message_bytes: 20,
            ..unparsed
        };
        let e = parse_line(line.as_bytes(), &cut);
        assert_eq!(e.get_str("event.original"), Some(&line[..20]));
        let e = parse_line(b"{\"a\": \"\xff\"}", &unparsed);
        assert!(
            e.get_str("event.original").is_some(),
            "invalid UTF-8 keeps it"
        );
        // JSON objects over the API: the canonical copy is not made.
        let v = serde_json::json!({"user": {"name": "alice"}, "message": "hi"});
        assert_eq!(
            parse_json(v.clone(), &unparsed)
                .unwrap()
                .get("event.original"),
            None
        );
        assert!(parse_json(v, &ParseOptions::default())
            .unwrap()
            .get_str("event.original")
            .is_some());
    }
}
