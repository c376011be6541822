//! Apache / nginx access logs in the Common and Combined Log Formats.
//!
//! `203.0.113.9 - alice [10/Oct/2000:13:55:36 -0700] "GET /a.gif?x=1 HTTP/1.0" 200 2326 "http://ex.com/" "Mozilla/5.0"`
//!
//! A hand-written byte scanner rather than a regex: this runs on every line
//! that starts like an address, and the fixed field order makes one left-to-right
//! pass enough. Only ASCII delimiters are searched for, so every slice boundary
//! is a char boundary. Fields nginx or Apache append after the user agent
//! (`"$http_x_forwarded_for"`, request time) are ignored.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use vigil_event::{fields, Event};

/// `event.dataset` of access-log events: whether Apache or nginx wrote the
/// line cannot be told from the line.
pub const DATASET: &str = "http.access";
/// `log.format` of access-log events.
pub const FORMAT: &str = "clf";

/// One access-log line, borrowed from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog<'a> {
    /// Client address (`%h` / `$remote_addr`): an IP, or a host name with `HostnameLookups`.
    pub client: &'a str,
    /// Authenticated user (`%u` / `$remote_user`), `None` for `-`.
    pub user: Option<&'a str>,
    /// Request time, if it parsed.
    pub time: Option<DateTime<Utc>>,
    /// The request line as logged (escapes such as `\"` and `\x16` left as they are).
    pub request: &'a str,
    /// Response status.
    pub status: u16,
    /// Response body size; `None` for `-`.
    pub bytes: Option<u64>,
    /// Referer header (combined format only), `None` for `-`.
    pub referrer: Option<&'a str>,
    /// User-Agent header (combined format only), `None` for `-`.
    pub user_agent: Option<&'a str>,
}

/// Reads an access-log line; `None` if the line is not in that shape.
pub fn parse(line: &str) -> Option<AccessLog<'_>> {
    let mut s = Scanner {
        s: line.trim_end(),
        pos: 0,
    };
    let client = s.token()?;
    let _ident = s.token()?;
    let user = s.token()?;
    s.expect(b'[')?;
    let time = s.until(b']')?;
    s.expect(b' ')?;
    let request = s.quoted()?;
    s.expect(b' ')?;
    let status = s.token()?;
    let bytes = s.token_or_end()?;
    if status.len() != 3 || !status.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let status: u16 = status.parse().ok()?;
    let bytes = match bytes {
        "-" => None,
        b => Some(b.parse::<u64>().ok()?),
    };
    let (mut referrer, mut user_agent) = (None, None);
    if s.peek() == Some(b'"') {
        referrer = Some(s.quoted()?);
        if s.expect(b' ').is_some() {
            user_agent = s.quoted();
        }
    }
    Some(AccessLog {
        client,
        user: dash(user),
        time: DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z")
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        request,
        status,
        bytes,
        referrer: referrer.and_then(dash),
        user_agent: user_agent.and_then(dash),
    })
}

/// `None` for the `-` that CLF writes for an absent value.
fn dash(v: &str) -> Option<&str> {
    (v != "-" && !v.is_empty()).then_some(v)
}

/// Writes the ECS fields of a parsed line into `ev`.
pub fn apply(a: &AccessLog<'_>, ev: &mut Event) {
    match a.client.parse::<IpAddr>() {
        Ok(ip) => {
            let ip = ip.to_string();
            ev.push(fields::RELATED_IP, &ip);
            ev.set(fields::SOURCE_IP, ip);
        }
        Err(_) => ev.set(fields::SOURCE_DOMAIN, a.client),
    }
    if let Some(u) = a.user {
        ev.set(fields::USER_NAME, u);
        ev.push(fields::RELATED_USER, u);
    }
    if let Some(t) = a.time {
        ev.set_timestamp(t);
    }
    // Scanners send TLS handshakes or junk as the request line; only a
    // well-formed `METHOD TARGET HTTP/x` is split into its parts.
    let mut parts = a.request.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(proto), None)
            if !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()) =>
        {
            ev.set(fields::HTTP_REQUEST_METHOD, method);
            ev.set(fields::URL_ORIGINAL, target);
            match target.split_once('?') {
                Some((path, query)) => {
                    ev.set(fields::URL_PATH, path);
                    ev.set(fields::URL_QUERY, query);
                }
                None => ev.set(fields::URL_PATH, target),
            }
            if let Some(v) = proto.strip_prefix("HTTP/") {
                ev.set(fields::HTTP_VERSION, v);
            }
        }
        _ if a.request != "-" && !a.request.is_empty() => ev.set(fields::URL_ORIGINAL, a.request),
        _ => {}
    }
    ev.set(fields::HTTP_RESPONSE_STATUS_CODE, a.status);
    if let Some(b) = a.bytes {
        ev.set(fields::HTTP_RESPONSE_BODY_BYTES, b);
    }
    if let Some(r) = a.referrer {
        ev.set(fields::HTTP_REQUEST_REFERRER, r);
    }
    if let Some(ua) = a.user_agent {
        ev.set(fields::USER_AGENT_ORIGINAL, ua);
    }
    ev.set(fields::EVENT_KIND, "event");
    ev.push(fields::EVENT_CATEGORY, "web");
    ev.push(fields::EVENT_TYPE, "access");
    ev.set(
        fields::EVENT_OUTCOME,
        if a.status < 400 { "success" } else { "failure" },
    );
    ev.set(fields::EVENT_DATASET, DATASET);
    ev.set(fields::LOG_FORMAT, FORMAT);
}

/// [`parse`] then [`apply`]; returns whether the line was an access log.
pub fn parse_into(line: &str, ev: &mut Event) -> bool {
    match parse(line) {
        Some(a) => {
            apply(&a, ev);
            true
        }
        None => false,
    }
}

/// A cursor over ASCII delimiters.
struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.pos += 1)
    }

    /// Text up to `end` (exclusive); the cursor moves past `end`.
    fn until(&mut self, end: u8) -> Option<&'a str> {
        let rest = &self.s.as_bytes()[self.pos..];
        let n = memchr::memchr(end, rest)?;
        let out = &self.s[self.pos..self.pos + n];
        self.pos += n + 1;
        Some(out)
    }

    /// A non-empty space-terminated token; the cursor moves past the space.
    fn token(&mut self) -> Option<&'a str> {
        let t = self.until(b' ')?;
        (!t.is_empty()).then_some(t)
    }

    /// A token ended by a space or the end of the line.
    fn token_or_end(&mut self) -> Option<&'a str> {
        if let Some(t) = self.token() {
            return Some(t);
        }
        let t = self.s.get(self.pos..)?;
        if t.is_empty() || t.contains(' ') {
            return None;
        }
        self.pos = self.s.len();
        Some(t)
    }

    /// `"…"` with backslash escapes; returns the raw inside.
    fn quoted(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.pos;
        let bytes = self.s.as_bytes();
        let mut i = start;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    self.pos = i + 1;
                    return self.s.get(start..i);
                }
                _ => i += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COMBINED: &str = r#"203.0.113.9 - alice [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?a=1&b=2 HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/5.0 (X11; Linux x86_64)""#;

    fn run(line: &str) -> Option<Event> {
        let mut ev = Event::new();
        parse_into(line, &mut ev).then_some(ev)
    }

    #[test]
    fn combined() {
        let e = run(COMBINED).unwrap();
        assert_eq!(e.get_str("source.ip"), Some("203.0.113.9"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("@timestamp"), Some("2000-10-10T20:55:36Z"));
        assert_eq!(e.get_str("http.request.method"), Some("GET"));
        assert_eq!(e.get_str("url.original"), Some("/apache_pb.gif?a=1&b=2"));
        assert_eq!(e.get_str("url.path"), Some("/apache_pb.gif"));
        assert_eq!(e.get_str("url.query"), Some("a=1&b=2"));
        assert_eq!(e.get_str("http.version"), Some("1.0"));
        assert_eq!(e.get_i64("http.response.status_code"), Some(200));
        assert_eq!(e.get_i64("http.response.body.bytes"), Some(2326));
        assert_eq!(
            e.get_str("http.request.referrer"),
            Some("http://www.example.com/start.html")
        );
        assert_eq!(
            e.get_str("user_agent.original"),
            Some("Mozilla/5.0 (X11; Linux x86_64)")
        );
        assert_eq!(e.get("event.category"), Some(&json!(["web"])));
        assert_eq!(e.get("event.type"), Some(&json!(["access"])));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        assert_eq!(e.get_str("event.dataset"), Some("http.access"));
        assert_eq!(e.get_str("log.format"), Some("clf"));
    }

    #[test]
    fn common_nginx_style() {
        let e = run(r#"2001:db8::5 - - [12/Jan/2024:06:30:00 +0000] "POST /login HTTP/1.1" 401 -"#)
            .unwrap();
        assert_eq!(e.get_str("source.ip"), Some("2001:db8::5"));
        assert!(!e.contains("user.name"));
        assert_eq!(e.get_i64("http.response.status_code"), Some(401));
        assert!(!e.contains("http.response.body.bytes"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("url.path"), Some("/login"));
        assert!(!e.contains("url.query"));
        assert!(!e.contains("user_agent.original"));
    }

    #[test]
    fn nginx_with_extras_and_escapes() {
        let e = run(
            r#"198.51.100.2 - - [12/Jan/2024:06:30:00 +0100] "\x16\x03\x01\x00\xCA" 400 157 "-" "-" "-""#,
        )
        .unwrap();
        assert!(!e.contains("http.request.method"));
        assert_eq!(e.get_str("url.original"), Some(r"\x16\x03\x01\x00\xCA"));
        assert!(!e.contains("http.request.referrer"));
        let e = run(r#"198.51.100.2 - - [12/Jan/2024:06:30:00 +0100] "GET /q?\"x\" HTTP/1.1" 200 5 "-" "curl/8.0" 0.002"#)
            .unwrap();
        assert_eq!(e.get_str("url.query"), Some(r#"\"x\""#));
        assert_eq!(e.get_str("user_agent.original"), Some("curl/8.0"));
    }

    #[test]
    fn not_access_logs() {
        for l in [
            "203.0.113.9 connected",
            "1 2 3 [x] \"y\" 2000 5",
            "a b c [d] \"e\" 200",
            "hello world",
            "",
        ] {
            assert!(parse(l).is_none(), "{l}");
        }
    }

    #[test]
    fn truncated_variants_do_not_panic() {
        let s = format!("{COMBINED} é");
        for (i, _) in s.char_indices() {
            let _ = run(&s[..i]);
            let _ = run(&s[i..]);
        }
    }
}
