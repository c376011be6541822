//! ArcSight Common Event Format:
//! `CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension`.
//!
//! Header fields escape `|` and `\` with a backslash; extension values
//! escape `=` and `\` and may contain spaces, so a value ends only where the
//! next ` key=` begins. The common extension keys are mapped to ECS, the
//! rest kept under `cef.extensions.*`.

use vigil_event::{fields, Event};

use crate::decoders::{set_ip, set_port};
use crate::ParseOptions;

/// `log.format` of CEF events.
pub const FORMAT: &str = "cef";
/// `event.dataset` of CEF events.
pub const DATASET: &str = "cef";

/// A parsed CEF record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cef {
    /// CEF format version (`0` or `1`).
    pub version: String,
    /// Device Vendor.
    pub vendor: String,
    /// Device Product.
    pub product: String,
    /// Device Version.
    pub device_version: String,
    /// Signature ID (Device Event Class ID).
    pub signature_id: String,
    /// Name: human-readable description.
    pub name: String,
    /// Severity as written: `0`–`10`, or `Low`/`Medium`/`High`/`Very-High`/`Unknown`.
    pub severity: String,
    /// Extension pairs in order, values unescaped.
    pub extensions: Vec<(String, String)>,
}

/// Why a line starting with `CEF:` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CefError {
    /// Fewer than the seven header fields.
    #[error("CEF header has {0} of 7 fields")]
    ShortHeader(usize),
    /// The text does not start with `CEF:`.
    #[error("not a CEF record")]
    NotCef,
}

/// Reads a CEF record (the text from `CEF:` on).
pub fn parse(s: &str) -> Result<Cef, CefError> {
    let s = s
        .trim_start()
        .strip_prefix("CEF:")
        .ok_or(CefError::NotCef)?;
    let mut header: Vec<String> = Vec::with_capacity(7);
    let mut cur = String::new();
    let mut chars = s.char_indices();
    let mut ext_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, n @ ('|' | '\\'))) => cur.push(n),
                Some((_, n)) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => cur.push('\\'),
            },
            '|' => {
                header.push(std::mem::take(&mut cur));
                if header.len() == 7 {
                    ext_start = Some(i + 1);
                    break;
                }
            }
            c => cur.push(c),
        }
    }
    let Some(ext_start) = ext_start else {
        return Err(CefError::ShortHeader(
            header.len() + usize::from(!cur.is_empty()),
        ));
    };
    let mut h = header.into_iter();
    let mut next = || h.next().unwrap_or_default();
    Ok(Cef {
        version: next().trim().to_string(),
        vendor: next(),
        product: next(),
        device_version: next(),
        signature_id: next(),
        name: next(),
        severity: next().trim().to_string(),
        extensions: parse_extension(&s[ext_start..]),
    })
}

/// Whether `b[i..]` starts an extension key: `[A-Za-z0-9_.\[\]-]+=`.
fn key_at(b: &[u8], i: usize) -> Option<usize> {
    let n = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'[' | b']'))
        .count();
    (n > 0 && b.get(i + n) == Some(&b'=')).then_some(n)
}

/// `k1=v1 k2=value with spaces k3=a\=b`
fn parse_extension(s: &str) -> Vec<(String, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    while i < b.len() {
        let Some(klen) = key_at(b, i) else {
            break;
        };
        let key = &s[i..i + klen];
        i += klen + 1;
        let mut value = String::new();
        let mut seg = i;
        // The value runs to the last space before the next `key=`.
        let mut ended_by_key = false;
        while i < b.len() {
            match b[i] {
                b'\\' if i + 1 < b.len() => {
                    value.push_str(&s[seg..i]);
                    match b[i + 1] {
                        b'=' => value.push('='),
                        b'\\' => value.push('\\'),
                        b'|' => value.push('|'),
                        b'n' => value.push('\n'),
                        b'r' => value.push('\r'),
                        _ => {
                            // Unknown escape: keep the backslash, reread the next char.
                            value.push('\\');
                            i += 1;
                            seg = i;
                            continue;
                        }
                    }
                    i += 2;
                    seg = i;
                }
                b' ' => {
                    let mut j = i;
                    while j < b.len() && b[j] == b' ' {
                        j += 1;
                    }
                    if j < b.len() && key_at(b, j).is_some() {
                        value.push_str(&s[seg..i]);
                        i = j;
                        ended_by_key = true;
                        break;
                    }
                    i = j;
                }
                _ => i += 1,
            }
        }
        if !ended_by_key {
            value.push_str(&s[seg..]);
            value.truncate(value.trim_end().len());
        }
        out.push((key.to_string(), value));
    }
    out
}

/// Numeric `event.severity` from a CEF severity (`0`–`10` or the CEF 1 words).
fn severity_number(s: &str) -> Option<u64> {
    if let Ok(n) = s.parse::<u64>() {
        return (n <= 10).then_some(n);
    }
    match s.to_ascii_lowercase().as_str() {
        "low" => Some(3),
        "medium" => Some(6),
        "high" => Some(8),
        "very-high" | "very high" => Some(10),
        _ => None,
    }
}

/// Writes a parsed record into `ev`. At most `opts.max_fields` extensions
/// are taken; returns whether some were dropped.
pub fn apply(cef: &Cef, ev: &mut Event, opts: &ParseOptions) -> bool {
    let nonempty = |s: &str| !s.is_empty();
    ev.set("cef.version", cef.version.as_str());
    for (path, v, ecs) in [
        ("cef.device.vendor", &cef.vendor, fields::OBSERVER_VENDOR),
        ("cef.device.product", &cef.product, fields::OBSERVER_PRODUCT),
        (
            "cef.device.version",
            &cef.device_version,
            fields::OBSERVER_VERSION,
        ),
        (
            "cef.device.event_class_id",
            &cef.signature_id,
            fields::EVENT_CODE,
        ),
    ] {
        if nonempty(v) {
            ev.set(path, v.as_str());
            ev.set(ecs, v.as_str());
        }
    }
    if nonempty(&cef.name) {
        ev.set("cef.name", cef.name.as_str());
    }
    if nonempty(&cef.severity) {
        ev.set("cef.severity", cef.severity.as_str());
        if let Some(n) = severity_number(&cef.severity) {
            ev.set(fields::EVENT_SEVERITY, n);
        }
    }
    let dropped = cef.extensions.len() > opts.max_fields;
    let mut rest = serde_json::Map::new();
    for (k, v) in cef.extensions.iter().take(opts.max_fields) {
        let mapped = match k.as_str() {
            "src" => set_ip(ev, fields::SOURCE_IP, v),
            "dst" => set_ip(ev, fields::DESTINATION_IP, v),
            "spt" | "dpt" => {
                let path = if k == "spt" {
                    fields::SOURCE_PORT
                } else {
                    fields::DESTINATION_PORT
                };
                set_port(ev, path, v);
                ev.contains(path)
            }
            "suser" | "duser" if !v.is_empty() => {
                let path = if k == "suser" {
                    fields::SOURCE_USER_NAME
                } else {
                    fields::DESTINATION_USER_NAME
                };
                ev.set(path, v.as_str());
                ev.push(fields::RELATED_USER, v);
                true
            }
            "shost" | "dhost" if !v.is_empty() => {
                let path = if k == "shost" {
                    fields::SOURCE_DOMAIN
                } else {
                    fields::DESTINATION_DOMAIN
                };
                ev.set(path, v.as_str());
                ev.push(fields::RELATED_HOSTS, v);
                true
            }
            "act" if !v.is_empty() => {
                ev.set(fields::EVENT_ACTION, v.as_str());
                true
            }
            "request" if !v.is_empty() => {
                ev.set(fields::URL_ORIGINAL, v.as_str());
                true
            }
            "requestMethod" if !v.is_empty() => {
                ev.set(fields::HTTP_REQUEST_METHOD, v.to_ascii_uppercase());
                true
            }
            "app" if !v.is_empty() => {
                ev.set(fields::NETWORK_PROTOCOL, v.to_ascii_lowercase());
                true
            }
            "outcome" => match v.to_ascii_lowercase().as_str() {
                o @ ("success" | "failure" | "unknown") => {
                    ev.set(fields::EVENT_OUTCOME, o);
                    true
                }
                "failed" | "fail" | "denied" | "blocked" => {
                    ev.set(fields::EVENT_OUTCOME, "failure");
                    false
                }
                _ => false,
            },
            "msg" if !v.is_empty() => {
                ev.set(fields::MESSAGE, v.as_str());
                true
            }
            _ => false,
        };
        if !mapped {
            rest.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
    }
    if !rest.is_empty() {
        // Inserted as one object so keys such as `cs1Label` or `ad.foo` stay
        // single keys instead of being split on their dots.
        ev.set("cef.extensions", serde_json::Value::Object(rest));
    }
    if !ev.contains(fields::MESSAGE) && nonempty(&cef.name) {
        ev.set(fields::MESSAGE, cef.name.as_str());
    }
    ev.set_default(fields::EVENT_KIND, "event");
    ev.set(fields::EVENT_DATASET, DATASET);
    ev.set(fields::LOG_FORMAT, FORMAT);
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LINE: &str = r"CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232 dpt=80 suser=alice act=blocked request=http://ex.com/a?b=c requestMethod=get app=HTTP outcome=success cs1Label=Rule cs1=block \= all\\ now msg=Detected a threat. No action needed.";

    #[test]
    fn header_and_extensions() {
        let c = parse(LINE).unwrap();
        assert_eq!(c.version, "0");
        assert_eq!(c.vendor, "Security");
        assert_eq!(c.name, "worm successfully stopped");
        assert_eq!(c.severity, "10");
        assert_eq!(c.extensions[0], ("src".to_string(), "10.0.0.1".to_string()));
        let cs1 = c.extensions.iter().find(|(k, _)| k == "cs1").unwrap();
        assert_eq!(cs1.1, r"block = all\ now");
        let msg = c.extensions.iter().find(|(k, _)| k == "msg").unwrap();
        assert_eq!(msg.1, "Detected a threat. No action needed.");
    }

    #[test]
    fn ecs_mapping() {
        let mut ev = Event::new();
        apply(&parse(LINE).unwrap(), &mut ev, &ParseOptions::default());
        assert_eq!(ev.get_str("observer.vendor"), Some("Security"));
        assert_eq!(ev.get_str("observer.product"), Some("threatmanager"));
        assert_eq!(ev.get_str("observer.version"), Some("1.0"));
        assert_eq!(ev.get_str("event.code"), Some("100"));
        assert_eq!(ev.get_i64("event.severity"), Some(10));
        assert_eq!(ev.get_str("cef.name"), Some("worm successfully stopped"));
        assert_eq!(ev.get_str("source.ip"), Some("10.0.0.1"));
        assert_eq!(ev.get_i64("source.port"), Some(1232));
        assert_eq!(ev.get_str("destination.ip"), Some("2.1.2.2"));
        assert_eq!(ev.get_i64("destination.port"), Some(80));
        assert_eq!(ev.get_str("source.user.name"), Some("alice"));
        assert_eq!(ev.get_str("event.action"), Some("blocked"));
        assert_eq!(ev.get_str("url.original"), Some("http://ex.com/a?b=c"));
        assert_eq!(ev.get_str("http.request.method"), Some("GET"));
        assert_eq!(ev.get_str("network.protocol"), Some("http"));
        assert_eq!(ev.get_str("event.outcome"), Some("success"));
        assert_eq!(
            ev.get_str("message"),
            Some("Detected a threat. No action needed.")
        );
        assert_eq!(
            ev.get("cef.extensions"),
            Some(&json!({"cs1Label": "Rule", "cs1": r"block = all\ now"}))
        );
        assert_eq!(ev.get_str("log.format"), Some("cef"));
        assert_eq!(ev.get_str("event.dataset"), Some("cef"));
    }

    #[test]
    fn escaped_pipes_in_header() {
        let c = parse(r"CEF:1|Ven\|dor|Pro\\duct|2|sig|Name with | pipe|High|").unwrap();
        assert_eq!(c.vendor, "Ven|dor");
        assert_eq!(c.product, r"Pro\duct");
        assert_eq!(c.name, "Name with ");
        assert_eq!(c.severity, "pipe");
        let c = parse(r"CEF:1|V|P|2|sig|Login failed|High|suser=bob").unwrap();
        let mut ev = Event::new();
        apply(&c, &mut ev, &ParseOptions::default());
        assert_eq!(ev.get_i64("event.severity"), Some(8));
        assert_eq!(ev.get_str("message"), Some("Login failed"));
        assert!(!ev.contains("cef.extensions"));
    }

    #[test]
    fn short_header() {
        assert_eq!(parse("CEF:0|a|b|c"), Err(CefError::ShortHeader(4)));
        assert_eq!(parse("hello"), Err(CefError::NotCef));
    }

    #[test]
    fn bad_ip_stays_in_extensions() {
        let c = parse("CEF:0|a|b|c|d|e|5|src=not-an-ip spt=99999").unwrap();
        let mut ev = Event::new();
        apply(&c, &mut ev, &ParseOptions::default());
        assert!(!ev.contains("source.ip"));
        assert_eq!(
            ev.get("cef.extensions"),
            Some(&json!({"src": "not-an-ip", "spt": "99999"}))
        );
    }

    #[test]
    fn truncated_variants_do_not_panic() {
        let s = format!("{LINE} ünï=\\ \\");
        for (i, _) in s.char_indices() {
            for v in [&s[..i], &s[i..]] {
                if let Ok(c) = parse(v) {
                    apply(&c, &mut Event::new(), &ParseOptions::default());
                }
            }
        }
    }
}
