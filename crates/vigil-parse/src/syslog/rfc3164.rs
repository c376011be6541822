//! Lenient RFC 3164 / BSD syslog parser.
//!
//! RFC 3164 describes what was seen on the wire rather than prescribing it,
//! so real traffic varies: files such as `/var/log/auth.log` carry no PRI,
//! network gear writes years, fractions, zones and a leading `*`, rsyslog can
//! emit RFC 3339 times, and the hostname is often left out. The parser takes
//! the line apart in order (PRI, timestamp, hostname, tag, message), each
//! part optional where real senders omit it. Only a line with neither PRI nor
//! timestamp is an error: it is not syslog and the caller keeps it as text.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone,
};
use chrono_tz::Tz;

use super::rfc5424::{parse_pri, parse_sd};
use super::{Protocol, SyslogError, SyslogMessage};
use crate::ParseOptions;

/// How far in the future an inferred date may lie before the previous year
/// is assumed; covers clock skew and the sender being ahead of us.
const FUTURE_SLACK_DAYS: i64 = 31;
/// Longest tag name taken as APP-NAME (RFC 3164 says 32; real tags run longer).
const MAX_TAG: usize = 64;
/// Longest `[pid]` content taken as PROCID (RFC 5424's PROCID limit).
const MAX_PID: usize = 128;

const ERR_NO_HEADER: &str =
    "expecting a priority value or a timestamp (Mmm dd hh:mm:ss or RFC 3339)";
const ERR_BAD_DATE: &str = "timestamp is not a valid calendar date";

/// Parses an RFC 3164 (BSD syslog) line leniently.
///
/// Accepted shapes, all with optional `<PRI>`, hostname and `tag[pid]:`:
/// `Mmm dd hh:mm:ss` (day padded with a space or not, optional `.fraction`),
/// `Mmm dd yyyy hh:mm:ss`, Cisco's `*Mmm dd hh:mm:ss.mmm UTC:` (leading `*` or
/// `.`, optional zone name, trailing `:`, optional `NN: ` sequence number
/// before it) and RFC 3339 / ISO 8601 (`2024-03-01T10:00:00.123+02:00`, a
/// space instead of `T`, up to nanoseconds, with or without zone).
///
/// A missing year is the latest one that does not put the date more than 31
/// days after [`ParseOptions::now`] (December lines read in January land in
/// the previous year). Times without a zone are wall time in
/// [`ParseOptions::timezone`]. A message beginning with well-formed structured
/// data that has parameters (rsyslog's `[origin software="rsyslogd" …]`) has
/// it moved to `structured_data`.
///
/// Fails only when there is neither a PRI nor a timestamp, or when the
/// timestamp names a date that does not exist (`Feb 30`).
pub fn parse_rfc3164(input: &str, opts: &ParseOptions) -> Result<SyslogMessage, SyslogError> {
    let s = input.trim_start();
    let lead = input.len() - s.len();
    let s = s.trim_end_matches(|c: char| c.is_whitespace() || c == '\0');
    let col = |rest: &str| lead + (s.len() - rest.len());

    let mut msg = SyslogMessage::empty(Protocol::Rfc3164);
    let mut rest = s;
    if let Ok((pri, pos)) = parse_pri(s.as_bytes()) {
        msg.priority = Some(pri);
        rest = s[pos..].trim_start();
    }

    let found = match timestamp(rest, opts) {
        Ts::None => skip_sequence_number(rest).map_or(Ts::None, |after| timestamp(after, opts)),
        other => other,
    };
    match found {
        Ts::Found(ts, after) => {
            msg.timestamp = Some(ts);
            rest = after.trim_start();
        }
        Ts::BadDate(at) => return Err(SyslogError::new(col(at), ERR_BAD_DATE)),
        Ts::None if msg.priority.is_some() => {
            msg.message = non_empty(rest);
            return Ok(msg);
        }
        Ts::None => return Err(SyslogError::new(col(rest), ERR_NO_HEADER)),
    }

    rest = header(rest, &mut msg);
    let (sd, rest) = leading_sd(rest);
    msg.structured_data = sd;
    msg.message = non_empty(rest);
    Ok(msg)
}

/// End of input or an ASCII whitespace byte: where a token may end.
fn ws_or_end(c: Option<u8>) -> bool {
    match c {
        None => true,
        Some(c) => c.is_ascii_whitespace(),
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Fills hostname and tag from what follows the timestamp; returns the message.
fn header<'a>(rest: &'a str, msg: &mut SyslogMessage) -> &'a str {
    if let Some((app, pid, after)) = tag(rest) {
        msg.appname = Some(app.to_owned());
        msg.procid = pid.map(str::to_owned);
        return after.trim_start();
    }
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let host = &rest[..end];
    // A word ending in ':' is a message label (`%SYS-5-CONFIG_I:`), and `[` or
    // `%` starts kernel or Cisco text, not a host name.
    if host.is_empty() || host.ends_with(':') || host.starts_with(['[', '%']) {
        return rest;
    }
    if host != "-" {
        msg.hostname = Some(host.to_owned());
    }
    let rest = rest[end..].trim_start();
    match tag(rest) {
        Some((app, pid, after)) => {
            msg.appname = Some(app.to_owned());
            msg.procid = pid.map(str::to_owned);
            after.trim_start()
        }
        None => rest,
    }
}

/// Recognizes `name:` / `name[pid]:` / `name[pid]` at the start of `s`.
///
/// `name:` must be followed by whitespace or the end so that IPv6 host names
/// (`fe80::1`) and `key:value` text are not mistaken for a tag.
fn tag(s: &str) -> Option<(&str, Option<&str>, &str)> {
    let b = s.as_bytes();
    if matches!(b.first(), None | Some(b'%' | b'[')) {
        return None;
    }
    let end = b
        .iter()
        .position(|c| matches!(c, b' ' | b'\t' | b':' | b'[' | b']'))?;
    if end == 0 || end > MAX_TAG {
        return None;
    }
    let name = &s[..end];
    match b[end] {
        b':' if ws_or_end(b.get(end + 1).copied()) => Some((name, None, &s[end + 1..])),
        b'[' => {
            let close = end
                + 1
                + b[end + 1..]
                    .iter()
                    .take(MAX_PID + 1)
                    .position(|&c| c == b']')?;
            let pid = &s[end + 1..close];
            if pid.is_empty() || pid.contains(char::is_whitespace) {
                return None;
            }
            match b.get(close + 1) {
                Some(b':') => Some((name, Some(pid), &s[close + 2..])),
                None => Some((name, Some(pid), "")),
                Some(c) if c.is_ascii_whitespace() => Some((name, Some(pid), &s[close + 1..])),
                Some(_) => None,
            }
        }
        _ => None,
    }
}

/// rsyslog puts RFC 5424 structured data at the start of some 3164 messages.
/// Only well-formed SD with at least one parameter is taken, so that kernel
/// uptimes (`[118479565.921459]`) and bracketed labels stay in the message.
fn leading_sd(s: &str) -> (Option<Vec<super::SdElement>>, &str) {
    if !s.starts_with('[') {
        return (None, s);
    }
    match parse_sd(s, 0) {
        Ok((sd, end))
            if sd.iter().any(|e| !e.params.is_empty())
                && ws_or_end(s.as_bytes().get(end).copied()) =>
        {
            (Some(sd), s[end..].trim_start())
        }
        _ => (None, s),
    }
}

/// Cisco IOS puts a sequence number before the timestamp: `27: *Mar  1 …`.
fn skip_sequence_number(s: &str) -> Option<&str> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let after = s[digits..].strip_prefix(':')?;
    (digits > 0 && after.starts_with(' ')).then(|| after.trim_start())
}

/// Result of looking for a timestamp; `&str`s are what follows / where it failed.
enum Ts<'a> {
    Found(DateTime<FixedOffset>, &'a str),
    BadDate(&'a str),
    None,
}

/// A small cursor over ASCII-structured text; every advance is over ASCII
/// bytes, so the remaining `&str` stays on a char boundary.
struct Cur<'a> {
    s: &'a str,
    p: usize,
}

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.p).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.p += usize::from(hit);
        hit
    }
    /// Between `min` and `max` digits, as a number.
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.p;
        let mut v = 0u32;
        while self.p - start < max {
            match self.peek() {
                Some(c) if c.is_ascii_digit() => {
                    v = v * 10 + u32::from(c - b'0');
                    self.p += 1;
                }
                _ => break,
            }
        }
        (self.p - start >= min).then_some(v)
    }
    fn spaces(&mut self) -> usize {
        let start = self.p;
        while self.peek() == Some(b' ') {
            self.p += 1;
        }
        self.p - start
    }
    /// `.fraction` or `,fraction` (1-9 digits) as nanoseconds; 0 if absent.
    fn fraction(&mut self) -> Option<u32> {
        let save = self.p;
        if !(self.eat(b'.') || self.eat(b',')) {
            return Some(0);
        }
        let start = self.p;
        let Some(v) = self.num(1, 9) else {
            self.p = save;
            return Some(0);
        };
        // Longer fractions are cut to nanoseconds rather than rejected.
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.p += 1;
        }
        let digits = (self.p - start).min(9) as u32;
        Some(v * 10u32.pow(9 - digits))
    }
    fn rest(&self) -> &'a str {
        &self.s[self.p..]
    }
    /// The timestamp must end at whitespace or the end of the line, after an
    /// optional Cisco-style `:`.
    fn at_boundary(&mut self) -> bool {
        if self.peek() == Some(b':') && ws_or_end(self.s.as_bytes().get(self.p + 1).copied()) {
            self.p += 1;
        }
        ws_or_end(self.peek())
    }
}

fn timestamp<'a>(s: &'a str, opts: &ParseOptions) -> Ts<'a> {
    // Cisco marks unsynchronized clocks with `*` and lost sync with `.`.
    let body = s.strip_prefix(['*', '.']).unwrap_or(s);
    let b = body.as_bytes();
    if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        iso(body, opts)
    } else if b.first().is_some_and(u8::is_ascii_alphabetic) {
        bsd(body, opts)
    } else {
        Ts::None
    }
}

fn time_of_day(c: &mut Cur) -> Option<NaiveTime> {
    let h = c.num(1, 2)?;
    if !c.eat(b':') {
        return None;
    }
    let m = c.num(2, 2)?;
    if !c.eat(b':') {
        return None;
    }
    let sec = c.num(2, 2)?;
    let nanos = c.fraction()?;
    NaiveTime::from_hms_nano_opt(h, m, sec.min(59), nanos)
}

/// `YYYY-MM-DD[T ]hh:mm:ss[.frac][Z|±hh[:]mm|±hh]`.
fn iso<'a>(s: &'a str, opts: &ParseOptions) -> Ts<'a> {
    let mut c = Cur { s, p: 0 };
    let parsed = (|| {
        let y = c.num(4, 4)? as i32;
        c.eat(b'-').then_some(())?;
        let mo = c.num(2, 2)?;
        c.eat(b'-').then_some(())?;
        let d = c.num(2, 2)?;
        (c.eat(b'T') || c.eat(b't') || c.eat(b' ')).then_some(())?;
        let t = time_of_day(&mut c)?;
        let offset = match c.peek() {
            Some(b'Z' | b'z') => {
                c.p += 1;
                Some(0)
            }
            Some(sign @ (b'+' | b'-')) => {
                c.p += 1;
                let hh = c.num(2, 2)? as i32;
                let mm = if c.eat(b':') {
                    c.num(2, 2)?
                } else {
                    c.num(2, 2).unwrap_or(0)
                } as i32;
                let secs = hh * 3600 + mm * 60;
                Some(if sign == b'-' { -secs } else { secs })
            }
            _ => None,
        };
        c.at_boundary().then_some((y, mo, d, t, offset))
    })();
    let Some((y, mo, d, t, offset)) = parsed else {
        return Ts::None;
    };
    let Some(date) = NaiveDate::from_ymd_opt(y, mo, d) else {
        return Ts::BadDate(s);
    };
    let naive = date.and_time(t);
    let ts = match offset {
        Some(secs) => {
            match FixedOffset::east_opt(secs).and_then(|o| o.from_local_datetime(&naive).single()) {
                Some(ts) => ts,
                None => return Ts::None,
            }
        }
        None => in_zone(&naive, opts.timezone),
    };
    Ts::Found(ts, c.rest())
}

/// `Mmm dd [yyyy] hh:mm:ss[.frac] [ZONE][:]`.
fn bsd<'a>(s: &'a str, opts: &ParseOptions) -> Ts<'a> {
    let Some(month) = s.get(..3).and_then(month_number) else {
        return Ts::None;
    };
    let mut c = Cur { s, p: 3 };
    let parsed = (|| {
        (c.spaces() > 0).then_some(())?;
        let day = c.num(1, 2)?;
        (c.spaces() > 0).then_some(())?;
        // An optional year sits between date and time; a time has a ':' after 1-2 digits.
        let save = c.p;
        let year = match c.num(4, 4) {
            Some(y) if c.spaces() > 0 => Some(y as i32),
            _ => {
                c.p = save;
                None
            }
        };
        let t = time_of_day(&mut c)?;
        let zone = zone_name(&mut c);
        c.at_boundary().then_some((day, year, t, zone))
    })();
    let Some((day, year, t, zone)) = parsed else {
        return Ts::None;
    };
    let tz = zone.unwrap_or(opts.timezone);
    let naive = match year {
        Some(y) => NaiveDate::from_ymd_opt(y, month, day).map(|d| d.and_time(t)),
        None => infer_year(month, day, t, tz, opts),
    };
    match naive {
        Some(n) => Ts::Found(in_zone(&n, tz), c.rest()),
        None => Ts::BadDate(s),
    }
}

/// An optional zone after the time, as Cisco writes it (`UTC`, `CET`).
///
/// Taken only when it is `UTC`/`GMT` or directly followed by the Cisco `:`,
/// so that a host name after the time is never eaten. Abbreviations the tz
/// database does not know (`PST`) are skipped and the configured zone used.
fn zone_name(c: &mut Cur) -> Option<Tz> {
    let save = c.p;
    if c.spaces() == 0 {
        return None;
    }
    let start = c.p;
    while c.peek().is_some_and(|b| b.is_ascii_uppercase()) {
        c.p += 1;
    }
    let name = &c.s[start..c.p];
    let followed_by_colon = c.peek() == Some(b':');
    let known = matches!(name, "UTC" | "GMT" | "Z");
    if (2..=5).contains(&name.len()) && (known || followed_by_colon) {
        return if known {
            Some(Tz::UTC)
        } else {
            name.parse::<Tz>().ok()
        };
    }
    c.p = save;
    None
}

fn month_number(m: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    MONTHS
        .iter()
        .position(|x| x.eq_ignore_ascii_case(m))
        .map(|i| i as u32 + 1)
}

/// The latest year (of next, this and last, in `tz`) that does not put the
/// date more than [`FUTURE_SLACK_DAYS`] after now and exists (Feb 29).
fn infer_year(
    month: u32,
    day: u32,
    t: NaiveTime,
    tz: Tz,
    opts: &ParseOptions,
) -> Option<NaiveDateTime> {
    let now = opts.now().with_timezone(&tz).naive_local();
    let limit = now + Duration::days(FUTURE_SLACK_DAYS);
    (now.year() - 1..=now.year() + 1)
        .rev()
        .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
        .map(|d| d.and_time(t))
        .find(|dt| *dt <= limit)
}

/// Wall time in `tz` as a fixed-offset time. In a DST fold the earlier
/// instant is taken; in a DST gap the offset in force just before it.
fn in_zone(naive: &NaiveDateTime, tz: Tz) -> DateTime<FixedOffset> {
    match tz.from_local_datetime(naive).earliest() {
        Some(dt) => dt.fixed_offset(),
        None => {
            let off = tz.offset_from_utc_datetime(naive).fix();
            off.from_utc_datetime(&(*naive - Duration::seconds(i64::from(off.local_minus_utc()))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn opts_at(now: &str, tz: Tz) -> ParseOptions {
        ParseOptions {
            timezone: tz,
            now: Some(
                DateTime::parse_from_rfc3339(now)
                    .unwrap()
                    .with_timezone(&Utc),
            ),
            ..ParseOptions::default()
        }
    }

    fn p(input: &str) -> SyslogMessage {
        parse_rfc3164(input, &opts_at("2024-06-15T12:00:00Z", Tz::UTC)).unwrap()
    }

    fn ts(m: &SyslogMessage) -> String {
        m.timestamp.unwrap().to_rfc3339()
    }

    #[test]
    fn auth_log_without_pri() {
        let m = p("Jan 12 06:30:00 bastion sshd[4721]: Failed password for root");
        assert_eq!(m.priority, None);
        assert_eq!(ts(&m), "2024-01-12T06:30:00+00:00");
        assert_eq!(m.hostname.as_deref(), Some("bastion"));
        assert_eq!(m.appname.as_deref(), Some("sshd"));
        assert_eq!(m.procid.as_deref(), Some("4721"));
        assert_eq!(m.message.as_deref(), Some("Failed password for root"));
    }

    #[test]
    fn day_padding_and_fraction() {
        // "now" is 2024-06-15, so August is more than a month ahead: last year.
        assert_eq!(
            ts(&p("<13>Aug  7 06:30:00 h a: x")),
            "2023-08-07T06:30:00+00:00"
        );
        assert_eq!(
            ts(&p("<13>May 7 06:30:00 h a: x")),
            "2024-05-07T06:30:00+00:00"
        );
        assert_eq!(
            ts(&p("<13>May 07 06:30:00.250 h a: x")),
            "2024-05-07T06:30:00.250+00:00"
        );
    }

    #[test]
    fn explicit_year() {
        let m = p("<13>Mar 1 2021 10:00:00 fw1 kernel: up");
        assert_eq!(ts(&m), "2021-03-01T10:00:00+00:00");
        assert_eq!(m.hostname.as_deref(), Some("fw1"));
    }

    #[test]
    fn no_hostname_tag_first() {
        let m = p("<133>Jan 13 16:33:35 haproxy[73411]: Proxy started.");
        assert_eq!(m.hostname, None);
        assert_eq!(m.appname.as_deref(), Some("haproxy"));
        assert_eq!(m.message.as_deref(), Some("Proxy started."));
        let m = p("<13>Jan 13 16:33:35 cron: job ran");
        assert_eq!((m.hostname, m.appname.as_deref()), (None, Some("cron")));
    }

    #[test]
    fn hostname_without_tag() {
        let m = p("<166>Jul  6 20:33:28 ABC-1-234567 Some message here");
        assert_eq!(m.hostname.as_deref(), Some("ABC-1-234567"));
        assert_eq!(m.appname, None);
        assert_eq!(m.message.as_deref(), Some("Some message here"));
        let m = p("<13>Jul  6 20:33:28 fe80::1 text: more");
        assert_eq!(m.hostname.as_deref(), Some("fe80::1"));
    }

    #[test]
    fn cisco() {
        let m = p(
            "<189>27: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
        );
        assert_eq!(m.priority, Some(189));
        assert_eq!(ts(&m), "2024-03-01T18:48:50.483+00:00");
        assert_eq!(m.hostname, None);
        assert_eq!(
            m.message.as_deref(),
            Some("%SYS-5-CONFIG_I: Configured from console by vty0")
        );
        let m = parse_rfc3164(
            "<166>Mar 1 2024 10:00:00.123: %ASA-6-302013: Built outbound",
            &opts_at("2024-06-15T12:00:00Z", Tz::Europe__Berlin),
        )
        .unwrap();
        assert_eq!(ts(&m), "2024-03-01T10:00:00.123+01:00");
        assert_eq!(m.message.as_deref(), Some("%ASA-6-302013: Built outbound"));
        let m = p(".Mar  1 18:48:50 CET: %LINK-3-UPDOWN: down");
        assert_eq!(ts(&m), "2024-03-01T18:48:50+01:00");
    }

    #[test]
    fn iso_timestamps() {
        let m = p("<28>2019-12-02T16:49:23+02:00 host app[23410]: Test");
        assert_eq!(ts(&m), "2019-12-02T16:49:23+02:00");
        assert_eq!(m.procid.as_deref(), Some("23410"));
        assert_eq!(
            ts(&p("2024-03-01T10:00:00Z host app: x")),
            "2024-03-01T10:00:00+00:00"
        );
        assert_eq!(
            ts(&p("<1>2024-03-01T10:00:00.123+02:00 h a: x")),
            "2024-03-01T10:00:00.123+02:00"
        );
        // rsyslog RSYSLOG_FileFormat (high precision)
        assert_eq!(
            ts(&p(
                "2019-02-13T21:53:30.605850+00:00 h liblogging-stdlog: x"
            )),
            "2019-02-13T21:53:30.605850+00:00"
        );
        // Zone-less ISO is wall time in the configured zone.
        let m = parse_rfc3164(
            "2024-07-01 10:00:00 h a: x",
            &opts_at("2024-06-15T12:00:00Z", Tz::Europe__Paris),
        );
        assert_eq!(ts(&m.unwrap()), "2024-07-01T10:00:00+02:00");
    }

    #[test]
    fn year_inference_across_new_year() {
        let jan = opts_at("2025-01-03T08:00:00Z", Tz::UTC);
        let m = parse_rfc3164("Dec 31 23:59:58 h a: x", &jan).unwrap();
        assert_eq!(ts(&m), "2024-12-31T23:59:58+00:00");
        let m = parse_rfc3164("Jan  3 07:00:00 h a: x", &jan).unwrap();
        assert_eq!(ts(&m), "2025-01-03T07:00:00+00:00");
        // A sender slightly ahead at New Year: Jan 1 read on Dec 31 is next year.
        let dec = opts_at("2024-12-31T23:59:00Z", Tz::UTC);
        let m = parse_rfc3164("Jan  1 00:00:05 h a: x", &dec).unwrap();
        assert_eq!(ts(&m), "2025-01-01T00:00:05+00:00");
        // Feb 29 goes to the last leap year that is not in the future.
        let m = parse_rfc3164(
            "Feb 29 10:00:00 h a: x",
            &opts_at("2025-03-10T00:00:00Z", Tz::UTC),
        )
        .unwrap();
        assert_eq!(ts(&m), "2024-02-29T10:00:00+00:00");
        assert!(parse_rfc3164(
            "Feb 29 10:00:00 h a: x",
            &opts_at("2019-06-01T00:00:00Z", Tz::UTC)
        )
        .is_err());
    }

    #[test]
    fn timezone_is_wall_time() {
        let ny = opts_at("2024-06-15T12:00:00Z", Tz::America__New_York);
        let m = parse_rfc3164("<13>Nov 22 17:09:42 xxx kernel: x", &ny).unwrap();
        assert_eq!(ts(&m), "2023-11-22T17:09:42-05:00");
        let m = parse_rfc3164("<13>Jun  1 17:09:42 xxx kernel: x", &ny).unwrap();
        assert_eq!(ts(&m), "2024-06-01T17:09:42-04:00");
        // DST gap (02:30 does not exist on 2024-03-10 in New York): no panic, a sane instant.
        let m = parse_rfc3164("Mar 10 02:30:00 h a: x", &ny).unwrap();
        assert_eq!(
            m.timestamp.unwrap().with_timezone(&Utc).to_rfc3339(),
            "2024-03-10T07:30:00+00:00"
        );
    }

    #[test]
    fn pri_with_free_text_and_errors() {
        let m = p("<134>hello world");
        assert_eq!(
            (m.priority, m.message.as_deref(), m.timestamp),
            (Some(134), Some("hello world"), None)
        );
        let e =
            parse_rfc3164("complete and utter gobbledegook", &ParseOptions::default()).unwrap_err();
        assert_eq!(e.column, 0);
        assert!(parse_rfc3164("", &ParseOptions::default()).is_err());
        assert!(parse_rfc3164("Feb 30 10:00:00 h a: x", &ParseOptions::default()).is_err());
    }

    #[test]
    fn rsyslog_sd_in_message() {
        let m = p("<46>Jan  5 15:33:03 host rsyslogd:  [origin software=\"rsyslogd\" x-pid=\"20506\"] start");
        let sd = m.structured_data.unwrap();
        assert_eq!(sd[0].id, "origin");
        assert_eq!(m.message.as_deref(), Some("start"));
        let m = p("<13>Nov 22 17:09:42 xxx kernel: [118479565.921459] EXT4-fs warning");
        assert_eq!(m.structured_data, None);
        assert_eq!(
            m.message.as_deref(),
            Some("[118479565.921459] EXT4-fs warning")
        );
    }

    #[test]
    fn no_panic_on_odd_input() {
        let o = ParseOptions::default();
        let samples = [
            "<",
            "<1",
            "<13>",
            "<13>Jän 1 10:00:00 x",
            "Jan",
            "Jan 1",
            "Jan 1 1",
            "Jan 1 10:00:00",
            "*",
            "2024-",
            "2024-01-01T",
            "2024-01-01T10:00:00+",
            "<1>Jan 1 10:00:00 h é[1é]: ü",
            "<1>Jan 1 10:00:00 é:",
            "Jan 99 99:99:99 h",
            "<1>Jan 1 10:00:00 h a[",
            "<1>Jan 1 10:00:00 h [a b=\"",
            "9999-12-31T23:59:59Z h",
            "1: *",
            "\u{feff}Jan 1 10:00:00",
        ];
        for s in samples {
            let _ = parse_rfc3164(s, &o);
            for (i, _) in s.char_indices() {
                let _ = parse_rfc3164(&s[..i], &o);
            }
        }
    }
}
