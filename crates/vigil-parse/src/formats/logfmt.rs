//! logfmt: `level=warn msg="disk almost full" path=/var free_pct=3`.
//!
//! A line counts as logfmt only when it consists entirely of `key=value`
//! pairs, at least two of them: prose that happens to contain one `a=b` stays
//! plain text. Values are kept as strings under `logfmt.<key>`; the usual
//! message, level and time keys are also mapped to ECS.

use vigil_event::{fields, Event};

use super::json::parse_time_str;
use crate::ParseOptions;

/// `log.format` of logfmt events.
pub const FORMAT: &str = "logfmt";
/// Where the pairs are kept.
pub const PREFIX: &str = "logfmt";

/// Most dots a key may have to be stored as a nested path; deeper keys are
/// flattened so a hostile line cannot build a deeply nested event.
const MAX_KEY_DOTS: usize = 4;

/// Reads a logfmt line into its pairs (values unescaped); `None` unless the
/// whole line is at least two pairs.
pub fn parse(line: &str) -> Option<Vec<(&str, String)>> {
    let b = line.as_bytes();
    let mut pairs = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'"' {
            i += 1;
        }
        if i == start || i >= b.len() || b[i] != b'=' {
            return None;
        }
        let key = &line[start..i];
        i += 1;
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            let mut seg = i;
            loop {
                match b.get(i)? {
                    b'"' => {
                        v.push_str(&line[seg..i]);
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        v.push_str(&line[seg..i]);
                        match b.get(i + 1)? {
                            b'n' => v.push('\n'),
                            b't' => v.push('\t'),
                            b'r' => v.push('\r'),
                            b'"' => v.push('"'),
                            b'\\' => v.push('\\'),
                            // Unknown escape: keep it literally (and stay on a
                            // char boundary if a multibyte char follows).
                            _ => v.push('\\'),
                        }
                        i += if matches!(b[i + 1], b'n' | b't' | b'r' | b'"' | b'\\') {
                            2
                        } else {
                            1
                        };
                        seg = i;
                    }
                    _ => i += 1,
                }
            }
            if i < b.len() && !b[i].is_ascii_whitespace() {
                return None;
            }
            v
        } else {
            let vs = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                if b[i] == b'"' {
                    return None;
                }
                i += 1;
            }
            line[vs..i].to_string()
        };
        pairs.push((key, value));
    }
    (pairs.len() >= 2).then_some(pairs)
}

/// Writes parsed pairs into `ev`: all under `logfmt.*`, plus `message`,
/// `log.level` and `@timestamp` from the conventional keys. At most
/// `opts.max_fields` pairs are taken; returns whether some were dropped.
pub fn apply(pairs: Vec<(&str, String)>, ev: &mut Event, opts: &ParseOptions) -> bool {
    let dropped = pairs.len() > opts.max_fields;
    for (key, value) in pairs.into_iter().take(opts.max_fields) {
        match key {
            "msg" | "message" => ev.set_default(fields::MESSAGE, value.as_str()),
            "level" | "lvl" | "severity" => {
                ev.set_default(fields::LOG_LEVEL, value.to_ascii_lowercase())
            }
            "time" | "ts" | "timestamp" if !ev.contains(fields::TIMESTAMP) => {
                if let Some(t) = parse_time_str(&value, opts) {
                    ev.set_timestamp(t);
                }
            }
            _ => {}
        }
        ev.set(&storage_path(key), value);
    }
    ev.set(fields::LOG_FORMAT, FORMAT);
    dropped
}

/// `logfmt.<key>`, with dots kept as nesting only when the key is a clean
/// dotted path of modest depth.
fn storage_path(key: &str) -> String {
    let dots = key.bytes().filter(|&b| b == b'.').count();
    let clean = dots <= MAX_KEY_DOTS && key.split('.').all(|s| !s.is_empty());
    if clean {
        format!("{PREFIX}.{key}")
    } else {
        format!("{PREFIX}.{}", key.replace('.', "_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        let p = parse(r#"level=warn msg="disk \"almost\" full" path=/var empty= n=3"#).unwrap();
        assert_eq!(
            p,
            vec![
                ("level", "warn".to_string()),
                ("msg", r#"disk "almost" full"#.to_string()),
                ("path", "/var".to_string()),
                ("empty", String::new()),
                ("n", "3".to_string()),
            ]
        );
    }

    #[test]
    fn not_logfmt() {
        for l in [
            "just some text",
            "one=pair",
            "a=1 and prose",
            r#"a=1 b="unterminated"#,
            r#"a=1 b="x"y"#,
            "=1 b=2",
            "",
        ] {
            assert!(parse(l).is_none(), "{l}");
        }
    }

    #[test]
    fn apply_maps_common_keys() {
        let mut ev = Event::new();
        let p =
            parse(r#"ts=2024-01-12T06:30:00Z level=WARN msg="hi there" http.status=500 a..b=1"#)
                .unwrap();
        assert!(!apply(p, &mut ev, &ParseOptions::default()));
        assert_eq!(ev.get_str("message"), Some("hi there"));
        assert_eq!(ev.get_str("log.level"), Some("warn"));
        assert_eq!(ev.get_str("@timestamp"), Some("2024-01-12T06:30:00Z"));
        assert_eq!(ev.get_str("logfmt.http.status"), Some("500"));
        assert_eq!(ev.get_str("logfmt.a__b"), Some("1"));
        assert_eq!(ev.get_str("log.format"), Some("logfmt"));
    }

    #[test]
    fn field_cap_and_deep_keys() {
        let line = (0..10)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut ev = Event::new();
        let opts = ParseOptions {
            max_fields: 4,
            ..ParseOptions::default()
        };
        assert!(apply(parse(&line).unwrap(), &mut ev, &opts));
        assert_eq!(ev.field_count(), 5);
        let deep = format!("{}=1 b=2", "a.".repeat(1000) + "z");
        let mut ev = Event::new();
        apply(parse(&deep).unwrap(), &mut ev, &ParseOptions::default());
        assert!(super::super::json::depth(ev.as_map()) <= 3);
    }

    #[test]
    fn truncated_variants_do_not_panic() {
        let s = r#"level=warn msg="dïsk \"almost\\ full\q" path=/vär n=3"#;
        for (i, _) in s.char_indices() {
            let _ = parse(&s[..i]);
            let _ = parse(&s[i..]);
        }
    }
}
