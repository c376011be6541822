//! Time expressions for `--since`/`--until` and for range terms on times.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

/// Why a time expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time '{input}': {reason}")]
pub struct TimeError {
    /// The text that was refused (trimmed, cut to 64 bytes).
    pub input: String,
    /// What was expected instead.
    pub reason: String,
}

const EXPECTED: &str = "expected a duration back from now (30s, 15m, 2h, 7d, 1w), 'now', \
                        a date (2024-03-01) or a date and time (2024-03-01T10:00:00Z)";

/// Reads a point in time.
///
/// Accepts, relative to `now`: `now`; a duration back from now, `<N><unit>`
/// with unit `s`, `m`, `h`, `d` or `w` (`15m` is fifteen minutes ago), also
/// written `now-15m`. Absolute: RFC 3339 (`2024-03-01T10:00:00+02:00`), a date
/// (`2024-03-01`, midnight UTC) or a date and time without offset
/// (`2024-03-01T10:00:00`, or with a space instead of `T`), taken as UTC.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// let now = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
/// assert_eq!(vigil_query::parse_time("2h", now).unwrap(), Utc.with_ymd_and_hms(2024, 3, 1, 10, 0, 0).unwrap());
/// assert_eq!(vigil_query::parse_time("2024-02-01", now).unwrap(), Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap());
/// ```
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeError> {
    let t = s.trim();
    let err = |reason: &str| TimeError {
        input: truncate(t, 64).to_string(),
        reason: reason.to_string(),
    };
    if t.is_empty() {
        return Err(err(EXPECTED));
    }
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    let rel = t
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("now-"))
        .map(|_| &t[4..])
        .unwrap_or(t);
    if let Some(d) = parse_duration(rel).map_err(|r| err(&r))? {
        return now
            .checked_sub_signed(d)
            .ok_or_else(|| err("the duration reaches before the earliest representable time"));
    }
    parse_absolute(t).ok_or_else(|| err(EXPECTED))
}

/// Reads an absolute time: RFC 3339, `YYYY-MM-DD` (midnight UTC) or
/// `YYYY-MM-DDTHH:MM:SS[.fff]` without offset (UTC).
pub fn parse_absolute(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    // Every accepted form starts with four digits and a dash; checking this
    // first keeps the common "not a time" case (range values on numbers,
    // stored strings in a scan) from running three full parsers.
    let b = s.as_bytes();
    if b.len() < 10 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if b.len() == 10 {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|n| n.and_utc());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n.and_utc());
        }
    }
    None
}

/// `Ok(None)` when `s` is not shaped like a duration at all (so the caller
/// tries absolute forms), `Err` when it is but cannot be used.
fn parse_duration(s: &str) -> Result<Option<Duration>, String> {
    let Some(unit) = s.chars().last() else {
        return Ok(None);
    };
    if unit.is_ascii_digit() {
        return Ok(None);
    }
    let digits = &s[..s.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let secs_per: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => {
            return Err(format!(
                "unknown duration unit '{unit}'; expected s, m, h, d or w"
            ))
        }
    };
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(secs_per))
        .and_then(Duration::try_seconds)
        .map(Some)
        .ok_or_else(|| "the duration is too large".to_string())
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 10, 12, 0, 0).unwrap()
    }

    #[test]
    fn relative() {
        let n = now();
        assert_eq!(parse_time("now", n).unwrap(), n);
        assert_eq!(parse_time("NOW", n).unwrap(), n);
        assert_eq!(parse_time("30s", n).unwrap(), n - Duration::seconds(30));
        assert_eq!(parse_time("15m", n).unwrap(), n - Duration::minutes(15));
        assert_eq!(parse_time("2h", n).unwrap(), n - Duration::hours(2));
        assert_eq!(parse_time("7d", n).unwrap(), n - Duration::days(7));
        assert_eq!(parse_time("1w", n).unwrap(), n - Duration::weeks(1));
        assert_eq!(parse_time(" now-1h ", n).unwrap(), n - Duration::hours(1));
        assert_eq!(parse_time("0s", n).unwrap(), n);
    }

    #[test]
    fn absolute() {
        let n = now();
        assert_eq!(
            parse_time("2024-03-01", n).unwrap(),
            Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            parse_time("2024-03-01T10:00:00", n).unwrap(),
            Utc.with_ymd_and_hms(2024, 3, 1, 10, 0, 0).unwrap()
        );
        assert_eq!(
            parse_time("2024-03-01 10:00:00.5", n).unwrap(),
            Utc.with_ymd_and_hms(2024, 3, 1, 10, 0, 0).unwrap() + Duration::milliseconds(500)
        );
        assert_eq!(
            parse_time("2024-03-01T10:00:00+02:00", n).unwrap(),
            Utc.with_ymd_and_hms(2024, 3, 1, 8, 0, 0).unwrap()
        );
        assert_eq!(
            parse_time("2024-03-01T10:00:00Z", n).unwrap(),
            Utc.with_ymd_and_hms(2024, 3, 1, 10, 0, 0).unwrap()
        );
    }

    #[test]
    fn refused() {
        let n = now();
        for bad in [
            "",
            "yesterday",
            "15",
            "2024-13-01",
            "2024-02-30",
            "m",
            "-5m",
            "1.5h",
        ] {
            assert!(parse_time(bad, n).is_err(), "{bad:?} accepted");
        }
        let e = parse_time("5y", n).unwrap_err();
        assert!(e.reason.contains("unknown duration unit 'y'"), "{e}");
        let e = parse_time("99999999999999999w", n).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
        let e = parse_time("9999999999w", n).unwrap_err();
        assert!(e.to_string().contains("earliest"), "{e}");
    }
}
