//! Strict RFC 5424 parser.
//!
//! A hand-written byte scanner instead of a regex: this is the hot path of
//! syslog ingest, and a single left-to-right pass both validates the grammar
//! and knows the exact column of the first offending byte, which is what the
//! error messages (worded like go-syslog's) report.
//!
//! Splits happen only at ASCII bytes, so every slice taken from the `&str`
//! input lies on a char boundary.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone};

use super::{Protocol, SdElement, SyslogError, SyslogMessage};

pub(crate) const ERR_PRI: &str = "expecting a priority value within angle brackets";
pub(crate) const ERR_PRIVAL: &str = "expecting a priority value in the range 1-191 or equal to 0";
pub(crate) const ERR_VERSION: &str = "expecting a version value in the range 1-999";
pub(crate) const ERR_TIMESTAMP: &str = "expecting a RFC3339MICRO timestamp or a nil value";
pub(crate) const ERR_HOSTNAME: &str =
    "expecting an hostname (from 1 to max 255 US-ASCII characters) or a nil value";
pub(crate) const ERR_APPNAME: &str =
    "expecting an app-name (from 1 to max 48 US-ASCII characters) or a nil value";
pub(crate) const ERR_PROCID: &str =
    "expecting a procid (from 1 to max 128 US-ASCII characters) or a nil value";
pub(crate) const ERR_MSGID: &str =
    "expecting a msgid (from 1 to max 32 US-ASCII characters) or a nil value";
pub(crate) const ERR_STRUCTUREDDATA: &str =
    "expecting a structured data section containing one or more elements (`[id( key=\"value\")*]+`) or a nil value";
pub(crate) const ERR_SDID: &str =
    "expecting a structured data element id (from 1 to max 32 US-ASCII characters; except `=`, ` `, `]`, and `\"`";
pub(crate) const ERR_SDPARAM: &str = "expecting a structured data parameter (`key=\"value\"`, both part from 1 to max 32 US-ASCII characters; key cannot contain `=`, ` `, `]`, and `\"`, while value cannot contain `]`, backslash, and `\"` unless escaped)";
pub(crate) const ERR_ESCAPE: &str =
    "expecting chars `]`, `\"`, and `\\` to be escaped within param value";
pub(crate) const ERR_SDID_DUPLICATED: &str = "duplicate structured data element id";
pub(crate) const ERR_PARSE: &str = "parsing error";

const MAX_HOSTNAME: usize = 255;
const MAX_APPNAME: usize = 48;
const MAX_PROCID: usize = 128;
const MAX_MSGID: usize = 32;
const MAX_SDNAME: usize = 32;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Whether the input starts like RFC 5424: `<PRI>` then a version digit.
pub(super) fn looks_like_5424(b: &[u8]) -> bool {
    match parse_pri(b) {
        Ok((_, pos)) => b.get(pos).is_some_and(u8::is_ascii_digit),
        Err(_) => false,
    }
}

/// Parses one RFC 5424 message strictly.
///
/// Lengths (HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32, SD names 32),
/// PRI 0..=191 without leading zeros, VERSION 1..=999, RFC 3339 timestamps
/// with at most six fraction digits and a real calendar date, SD escaping
/// (`\"`, `\\`, `\]` only) and unique SD-IDs are all enforced. A leading BOM
/// is removed from MSG. Input must be a single message: a newline is allowed
/// only inside MSG.
pub fn parse_rfc5424(input: &str) -> Result<SyslogMessage, SyslogError> {
    let b = input.as_bytes();
    let (pri, pos) = parse_pri(b)?;
    let mut msg = SyslogMessage::empty(Protocol::Rfc5424);
    msg.priority = Some(pri);
    parse_after_pri(input, pos, &mut msg, false)?;
    Ok(msg)
}

/// RFC 5424 without the `<PRI>` (starting at VERSION), as some file
/// templates write it; used by [`super::parse`] only.
pub(super) fn parse_without_pri(input: &str) -> Result<SyslogMessage, SyslogError> {
    let mut msg = SyslogMessage::empty(Protocol::Rfc5424);
    parse_after_pri(input, 0, &mut msg, false)?;
    Ok(msg)
}

/// Like [`parse_rfc5424`], but malformed structured data does not fail the
/// message: the header is kept and everything from the SD on becomes MSG
/// (`structured_data` is `None`), so no bytes are lost. Used by
/// [`super::parse`], where a valid header is worth more than strictness.
pub(super) fn parse_lenient_sd(input: &str) -> Result<SyslogMessage, SyslogError> {
    let (pri, pos) = parse_pri(input.as_bytes())?;
    let mut msg = SyslogMessage::empty(Protocol::Rfc5424);
    msg.priority = Some(pri);
    parse_after_pri(input, pos, &mut msg, true)?;
    Ok(msg)
}

/// Parses `<PRI>`, returning the value and the position after `>`.
///
/// The grammar is `"0" / 1-191 without leading zeros`; digits are consumed
/// only while they can still form a valid value, so the error column is the
/// first byte that cannot belong to the PRI.
pub(crate) fn parse_pri(b: &[u8]) -> Result<(u8, usize), SyslogError> {
    if b.first() != Some(&b'<') {
        return Err(SyslogError::new(0, ERR_PRI));
    }
    let mut pos = 1;
    let mut value: u32 = 0;
    match b.get(pos) {
        Some(b'0') => pos += 1,
        Some(c @ b'1'..=b'9') => {
            value = u32::from(c - b'0');
            pos += 1;
            while pos < 4 {
                match b.get(pos) {
                    Some(c) if c.is_ascii_digit() && value * 10 + u32::from(c - b'0') <= 191 => {
                        value = value * 10 + u32::from(c - b'0');
                        pos += 1;
                    }
                    _ => break,
                }
            }
        }
        _ => return Err(SyslogError::new(pos, ERR_PRIVAL)),
    }
    if b.get(pos) != Some(&b'>') {
        return Err(SyslogError::new(pos, ERR_PRIVAL));
    }
    // value <= 191 by construction.
    Ok((value as u8, pos + 1))
}

/// Everything after the PRI: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP
/// PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]. With `lenient_sd`, bad
/// structured data is kept as MSG instead of failing.
pub(crate) fn parse_after_pri(
    input: &str,
    mut pos: usize,
    msg: &mut SyslogMessage,
    lenient_sd: bool,
) -> Result<(), SyslogError> {
    let b = input.as_bytes();

    // VERSION: NONZERO-DIGIT 0*2DIGIT
    let start = pos;
    match b.get(pos) {
        Some(c @ b'1'..=b'9') => {
            let mut v = u16::from(c - b'0');
            pos += 1;
            while let Some(c) = b.get(pos).filter(|c| c.is_ascii_digit()) {
                if pos - start == 3 {
                    return Err(SyslogError::new(pos, ERR_VERSION));
                }
                v = v * 10 + u16::from(c - b'0');
                pos += 1;
            }
            msg.version = Some(v);
        }
        _ => return Err(SyslogError::new(pos, ERR_VERSION)),
    }
    pos = expect_sp(b, pos)?;

    // TIMESTAMP
    match b.get(pos) {
        Some(b'-') => pos += 1,
        _ => {
            let (ts, end) = parse_timestamp(input, pos)?;
            msg.timestamp = Some(ts);
            pos = end;
        }
    }
    pos = expect_sp(b, pos)?;

    let (v, p) = header_field(input, pos, MAX_HOSTNAME, ERR_HOSTNAME)?;
    msg.hostname = v;
    let (v, p) = header_field(input, p, MAX_APPNAME, ERR_APPNAME)?;
    msg.appname = v;
    let (v, p) = header_field(input, p, MAX_PROCID, ERR_PROCID)?;
    msg.procid = v;
    let (v, p) = header_field(input, p, MAX_MSGID, ERR_MSGID)?;
    msg.msgid = v;
    pos = p;

    // STRUCTURED-DATA
    match b.get(pos) {
        Some(b'-') => pos += 1,
        Some(b'[') => match parse_sd(input, pos) {
            Ok((sd, end)) if !lenient_sd || matches!(b.get(end), None | Some(b' ')) => {
                msg.structured_data = Some(sd);
                pos = end;
            }
            Err(e) if !lenient_sd => return Err(e),
            _ => {
                msg.message = Some(input[pos..].to_owned());
                return Ok(());
            }
        },
        _ if lenient_sd && pos < b.len() => {
            msg.message = Some(input[pos..].to_owned());
            return Ok(());
        }
        _ => return Err(SyslogError::new(pos, ERR_STRUCTUREDDATA)),
    }

    // [SP MSG]
    match b.get(pos) {
        None => {}
        Some(b' ') => {
            let mut m = &b[pos + 1..];
            if m.starts_with(BOM) {
                m = &m[BOM.len()..];
            } else if m.is_empty() {
                return Ok(());
            }
            // Only ASCII bytes or a whole BOM were skipped, so this is a char boundary.
            msg.message = Some(input[b.len() - m.len()..].to_owned());
        }
        Some(_) => return Err(SyslogError::new(pos, ERR_PARSE)),
    }
    Ok(())
}

fn expect_sp(b: &[u8], pos: usize) -> Result<usize, SyslogError> {
    if b.get(pos) == Some(&b' ') {
        Ok(pos + 1)
    } else {
        Err(SyslogError::new(pos, ERR_PARSE))
    }
}

/// A header field of 1..=max PRINTUSASCII bytes followed by SP; `-` is nil.
fn header_field(
    input: &str,
    start: usize,
    max: usize,
    err: &'static str,
) -> Result<(Option<String>, usize), SyslogError> {
    let b = input.as_bytes();
    let mut pos = start;
    while let Some(&c) = b.get(pos) {
        if c == b' ' {
            break;
        }
        if !(33..=126).contains(&c) || pos - start == max {
            return Err(SyslogError::new(pos, err));
        }
        pos += 1;
    }
    if pos == start {
        return Err(SyslogError::new(pos, err));
    }
    let value = &input[start..pos];
    let next = expect_sp(b, pos)?;
    Ok(((value != "-").then(|| value.to_owned()), next))
}

/// Reads one ASCII digit within `lo..=hi` at `pos`.
fn digit(b: &[u8], pos: usize, lo: u8, hi: u8) -> Result<u32, SyslogError> {
    match b.get(pos) {
        Some(&c) if (lo..=hi).contains(&c) => Ok(u32::from(c - b'0')),
        _ => Err(SyslogError::new(pos, ERR_TIMESTAMP)),
    }
}

fn lit(b: &[u8], pos: usize, c: u8) -> Result<(), SyslogError> {
    if b.get(pos) == Some(&c) {
        Ok(())
    } else {
        Err(SyslogError::new(pos, ERR_TIMESTAMP))
    }
}

/// Two digits whose first digit constrains the second (months, days, hours).
fn two_digits(
    b: &[u8],
    pos: usize,
    first: (u8, u8),
    second: impl Fn(u32) -> (u8, u8),
) -> Result<u32, SyslogError> {
    let d1 = digit(b, pos, first.0, first.1)?;
    let (lo, hi) = second(d1);
    let d2 = digit(b, pos + 1, lo, hi)?;
    Ok(d1 * 10 + d2)
}

/// RFC 3339 with at most microseconds (`FULL-DATE "T" FULL-TIME`), returning
/// the time and the position after it.
///
/// The grammar is checked digit by digit so that the error column points at
/// the first impossible byte; the calendar (day 31 of a 30-day month, Feb 29
/// outside leap years) is checked once the whole timestamp has been read.
pub(crate) fn parse_timestamp(
    input: &str,
    start: usize,
) -> Result<(DateTime<FixedOffset>, usize), SyslogError> {
    let b = input.as_bytes();
    let mut p = start;
    let mut year = 0i32;
    for _ in 0..4 {
        year = year * 10 + digit(b, p, b'0', b'9')? as i32;
        p += 1;
    }
    lit(b, p, b'-')?;
    let month = two_digits(b, p + 1, (b'0', b'1'), |d| {
        if d == 0 {
            (b'1', b'9')
        } else {
            (b'0', b'2')
        }
    })?;
    p += 3;
    lit(b, p, b'-')?;
    let day = two_digits(b, p + 1, (b'0', b'3'), |d| match d {
        0 => (b'1', b'9'),
        3 => (b'0', b'1'),
        _ => (b'0', b'9'),
    })?;
    p += 3;
    lit(b, p, b'T')?;
    let hour = two_digits(b, p + 1, (b'0', b'2'), |d| {
        if d == 2 {
            (b'0', b'3')
        } else {
            (b'0', b'9')
        }
    })?;
    p += 3;
    lit(b, p, b':')?;
    let minute = two_digits(b, p + 1, (b'0', b'5'), |_| (b'0', b'9'))?;
    p += 3;
    lit(b, p, b':')?;
    let second = two_digits(b, p + 1, (b'0', b'5'), |_| (b'0', b'9'))?;
    p += 3;
    let mut micros = 0u32;
    if b.get(p) == Some(&b'.') {
        p += 1;
        let frac_start = p;
        while let Some(c) = b.get(p).filter(|c| c.is_ascii_digit()) {
            if p - frac_start == 6 {
                return Err(SyslogError::new(p, ERR_TIMESTAMP));
            }
            micros = micros * 10 + u32::from(c - b'0');
            p += 1;
        }
        if p == frac_start {
            return Err(SyslogError::new(p, ERR_TIMESTAMP));
        }
        for _ in (p - frac_start)..6 {
            micros *= 10;
        }
    }
    let offset_secs = match b.get(p) {
        Some(b'Z') => {
            p += 1;
            0
        }
        Some(&s @ (b'+' | b'-')) => {
            let hh = two_digits(b, p + 1, (b'0', b'2'), |d| {
                if d == 2 {
                    (b'0', b'3')
                } else {
                    (b'0', b'9')
                }
            })?;
            lit(b, p + 3, b':')?;
            let mm = two_digits(b, p + 4, (b'0', b'5'), |_| (b'0', b'9'))?;
            p += 6;
            let secs = (hh * 3600 + mm * 60) as i32;
            if s == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return Err(SyslogError::new(p, ERR_TIMESTAMP)),
    };
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
        SyslogError::new(
            p,
            format!("parsing time {:?}: day out of range", &input[start..p]),
        )
    })?;
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros)
        .ok_or_else(|| SyslogError::new(p, ERR_TIMESTAMP))?;
    let offset =
        FixedOffset::east_opt(offset_secs).ok_or_else(|| SyslogError::new(p, ERR_TIMESTAMP))?;
    let ts = offset
        .from_local_datetime(&date.and_time(time))
        .single()
        .ok_or_else(|| SyslogError::new(p, ERR_TIMESTAMP))?;
    Ok((ts, p))
}

/// SD-NAME bytes: PRINTUSASCII except `=`, SP, `]`, `"`.
fn is_sd_name(c: u8) -> bool {
    (33..=126).contains(&c) && !matches!(c, b'=' | b']' | b'"')
}

/// Reads an SD-NAME of 1..=32 bytes; on error reports `err` at the offending column.
fn sd_name(b: &[u8], start: usize, err: &'static str) -> Result<usize, SyslogError> {
    let mut p = start;
    while b.get(p).is_some_and(|&c| is_sd_name(c)) {
        if p - start == MAX_SDNAME {
            return Err(SyslogError::new(p, err));
        }
        p += 1;
    }
    if p == start {
        return Err(SyslogError::new(p, err));
    }
    Ok(p)
}

/// One or more SD-ELEMENTs starting at a `[`; returns them and the position
/// after the last `]`. What follows is the caller's business (RFC 5424 wants
/// SP or end, RFC 3164 reuses this for rsyslog's SD-in-message).
pub(crate) fn parse_sd(input: &str, mut p: usize) -> Result<(Vec<SdElement>, usize), SyslogError> {
    let b = input.as_bytes();
    let mut out: Vec<SdElement> = Vec::new();
    while b.get(p) == Some(&b'[') {
        let id_start = p + 1;
        let id_end = sd_name(b, id_start, ERR_SDID)?;
        let id = &input[id_start..id_end];
        if out.iter().any(|e| e.id == id) {
            return Err(SyslogError::new(id_end, ERR_SDID_DUPLICATED));
        }
        p = id_end;
        let mut params = Vec::new();
        loop {
            match b.get(p) {
                Some(b']') => {
                    p += 1;
                    break;
                }
                Some(b' ') => {
                    let name_start = p + 1;
                    let name_end = sd_name(b, name_start, ERR_SDPARAM)?;
                    if b.get(name_end) != Some(&b'=') {
                        return Err(SyslogError::new(name_end, ERR_SDPARAM));
                    }
                    if b.get(name_end + 1) != Some(&b'"') {
                        return Err(SyslogError::new(name_end + 1, ERR_SDPARAM));
                    }
                    let (value, end) = sd_value(input, name_end + 2)?;
                    params.push((input[name_start..name_end].to_owned(), value));
                    p = end;
                    if !matches!(b.get(p), Some(b' ' | b']')) {
                        return Err(SyslogError::new(p, ERR_SDPARAM));
                    }
                }
                _ => return Err(SyslogError::new(p, ERR_SDID)),
            }
        }
        out.push(SdElement {
            id: id.to_owned(),
            params,
        });
    }
    Ok((out, p))
}

/// A PARAM-VALUE after its opening quote; returns the unescaped value and the
/// position after the closing quote.
fn sd_value(input: &str, start: usize) -> Result<(String, usize), SyslogError> {
    let b = input.as_bytes();
    let mut value = String::new();
    let mut seg = start;
    let mut p = start;
    loop {
        // Jump straight to the next byte that matters; values are mostly plain text.
        let Some(off) = memchr::memchr3(b'"', b'\\', b']', &b[p..]) else {
            return Err(SyslogError::new(b.len(), ERR_SDPARAM));
        };
        p += off;
        match b[p] {
            b'"' => {
                value.push_str(&input[seg..p]);
                return Ok((value, p + 1));
            }
            b'\\' => match b.get(p + 1) {
                Some(&c @ (b'"' | b'\\' | b']')) => {
                    value.push_str(&input[seg..p]);
                    value.push(char::from(c));
                    p += 2;
                    seg = p;
                }
                _ => return Err(SyslogError::new(p + 1, ERR_ESCAPE)),
            },
            _ => return Err(SyslogError::new(p, ERR_ESCAPE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> String {
        parse_rfc5424(input).unwrap_err().to_string()
    }

    #[test]
    fn rfc_example_with_sd() {
        let m = parse_rfc5424(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
             [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event",
        )
        .unwrap();
        assert_eq!(m.priority, Some(165));
        assert_eq!(m.facility(), Some(20));
        assert_eq!(m.severity(), Some(5));
        assert_eq!(m.version, Some(1));
        assert_eq!(
            m.timestamp.unwrap().to_rfc3339(),
            "2003-10-11T22:14:15.003+00:00"
        );
        assert_eq!(m.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(m.appname.as_deref(), Some("evntslog"));
        assert_eq!(m.procid, None);
        assert_eq!(m.msgid.as_deref(), Some("ID47"));
        let sd = m.structured_data.unwrap();
        assert_eq!(sd[0].id, "exampleSDID@32473");
        assert_eq!(
            sd[0].params[1],
            ("eventSource".to_owned(), "Application".to_owned())
        );
        assert_eq!(m.message.as_deref(), Some("An application event"));
    }

    #[test]
    fn nil_everything() {
        let m = parse_rfc5424("<0>1 - - - - - -").unwrap();
        assert_eq!(m.priority, Some(0));
        assert!(m.timestamp.is_none() && m.hostname.is_none() && m.structured_data.is_none());
        assert_eq!(m.message, None);
    }

    #[test]
    fn escapes() {
        let m = parse_rfc5424(r#"<1>1 - - - - - [a b="x\"y\\z\]w" c=""] m"#).unwrap();
        let sd = m.structured_data.unwrap();
        assert_eq!(sd[0].params[0].1, r#"x"y\z]w"#);
        assert_eq!(sd[0].params[1].1, "");
        assert!(err(r#"<1>1 - - - - - [a b="\n"]"#).starts_with("expecting chars"));
    }

    #[test]
    fn error_columns() {
        assert_eq!(
            err(""),
            "expecting a priority value within angle brackets [col 0]"
        );
        assert_eq!(
            err("<192>1"),
            "expecting a priority value in the range 1-191 or equal to 0 [col 3]"
        );
        assert_eq!(
            err("<002>1"),
            "expecting a priority value in the range 1-191 or equal to 0 [col 2]"
        );
        assert_eq!(
            err("<101>1000 x"),
            "expecting a version value in the range 1-999 [col 8]"
        );
        assert_eq!(err("<1>1"), "parsing error [col 4]");
        assert_eq!(
            err("<101>125 2003-09-29T22:99:16Z"),
            "expecting a RFC3339MICRO timestamp or a nil value [col 23]"
        );
        assert_eq!(
            err("<101>12 2018-02-29T22:14:16+01:00"),
            "parsing time \"2018-02-29T22:14:16+01:00\": day out of range [col 33]"
        );
        assert_eq!(
            err("<1>1 - - - - - [a][a]"),
            "duplicate structured data element id [col 20]"
        );
    }

    #[test]
    fn leap_day_and_offsets() {
        let m = parse_rfc5424("<1>1 2024-02-29T23:59:59.123456-07:30 - - - - -").unwrap();
        let t = m.timestamp.unwrap();
        assert_eq!(t.offset().local_minus_utc(), -(7 * 3600 + 30 * 60));
        assert_eq!(t.timestamp_subsec_micros(), 123456);
    }

    #[test]
    fn no_panic_on_multibyte() {
        for s in [
            "<1>1 - é - - - -",
            "<1>1 - - - - - [é]",
            "<1>1 - - - - - [a b=\"é\"] é",
            "<1>é",
            "<é",
        ] {
            let _ = parse_rfc5424(s);
        }
        // Every prefix of a valid message must be handled without panicking.
        let full = "<165>1 2003-10-11T22:14:15.003Z höst app 12 ID [a@1 k=\"vä\\\"l\"] \u{feff}mé";
        for (i, _) in full.char_indices() {
            let _ = parse_rfc5424(&full[..i]);
        }
    }
}
