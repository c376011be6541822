//! IBM QRadar Log Event Extended Format:
//! `LEEF:1.0|Vendor|Product|Version|EventID|key=value<TAB>key=value` and
//! `LEEF:2.0|Vendor|Product|Version|EventID|DELIM|key=valueDELIMkey=value`,
//! where DELIM is one character or its hex code (`^`, `x5E`, `0x5e`).
//!
//! The predefined attributes for addresses, ports, user and severity are
//! mapped to ECS; everything else is kept under `leef.attributes.*`.

use vigil_event::{fields, Event};

use crate::decoders::{set_ip, set_port};
use crate::ParseOptions;

/// `log.format` and `event.dataset` of LEEF events.
pub const FORMAT: &str = "leef";

/// A parsed LEEF record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leef {
    /// LEEF version (`1.0`, `2.0`).
    pub version: String,
    /// Vendor.
    pub vendor: String,
    /// Product.
    pub product: String,
    /// Product version.
    pub product_version: String,
    /// Event ID.
    pub event_id: String,
    /// Attributes in order.
    pub attributes: Vec<(String, String)>,
}

/// Reads a LEEF record (the text from `LEEF:` on); `None` if the header is incomplete.
pub fn parse(s: &str) -> Option<Leef> {
    let s = s.trim_start().strip_prefix("LEEF:")?;
    let mut parts = s.splitn(6, '|');
    let version = parts.next()?.trim().to_string();
    let vendor = parts.next()?.to_string();
    let product = parts.next()?.to_string();
    let product_version = parts.next()?.to_string();
    let event_id = parts.next()?.to_string();
    let mut rest = parts.next().unwrap_or("");
    let mut delim = '\t';
    if version.starts_with('2') {
        // LEEF 2.0 names its delimiter in a sixth header field.
        if let Some((d, attrs)) = rest.split_once('|') {
            if let Some(c) = delimiter(d) {
                delim = c;
                rest = attrs;
            }
        }
    }
    let attributes = rest
        .split(delim)
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect();
    Some(Leef {
        version,
        vendor,
        product,
        product_version,
        event_id,
        attributes,
    })
}

/// `^`, `x5E`, `0x5e` → the delimiter character; empty means tab.
fn delimiter(d: &str) -> Option<char> {
    let hex = d
        .strip_prefix("0x")
        .or_else(|| d.strip_prefix("x"))
        .or_else(|| d.strip_prefix("X"));
    if let Some(h) = hex.filter(|h| !h.is_empty() && h.len() <= 4) {
        return u32::from_str_radix(h, 16).ok().and_then(char::from_u32);
    }
    let mut cs = d.chars();
    match (cs.next(), cs.next()) {
        (None, _) => Some('\t'),
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// Writes a parsed record into `ev`. At most `opts.max_fields` attributes are
/// taken; returns whether some were dropped.
pub fn apply(l: &Leef, ev: &mut Event, opts: &ParseOptions) -> bool {
    ev.set("leef.version", l.version.as_str());
    for (v, ecs) in [
        (&l.vendor, fields::OBSERVER_VENDOR),
        (&l.product, fields::OBSERVER_PRODUCT),
        (&l.product_version, fields::OBSERVER_VERSION),
        (&l.event_id, fields::EVENT_CODE),
    ] {
        if !v.is_empty() {
            ev.set(ecs, v.as_str());
        }
    }
    let dropped = l.attributes.len() > opts.max_fields;
    let mut rest = serde_json::Map::new();
    for (k, v) in l.attributes.iter().take(opts.max_fields) {
        let mapped = match k.as_str() {
            "src" => set_ip(ev, fields::SOURCE_IP, v),
            "dst" => set_ip(ev, fields::DESTINATION_IP, v),
            "srcPort" | "dstPort" => {
                let path = if k == "srcPort" {
                    fields::SOURCE_PORT
                } else {
                    fields::DESTINATION_PORT
                };
                set_port(ev, path, v);
                ev.contains(path)
            }
            "usrName" if !v.is_empty() => {
                ev.set(fields::USER_NAME, v.as_str());
                ev.push(fields::RELATED_USER, v);
                true
            }
            "sev" => match v.trim().parse::<u64>() {
                Ok(n) => {
                    ev.set(fields::EVENT_SEVERITY, n);
                    true
                }
                Err(_) => false,
            },
            _ => false,
        };
        if !mapped {
            rest.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
    }
    if !rest.is_empty() {
        ev.set("leef.attributes", serde_json::Value::Object(rest));
    }
    ev.set_default(fields::EVENT_KIND, "event");
    ev.set(fields::EVENT_DATASET, FORMAT);
    ev.set(fields::LOG_FORMAT, FORMAT);
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leef1() {
        let l = parse("LEEF:1.0|Microsoft|MSExchange|2016|15345|src=10.50.1.1\tdst=2.10.20.20\tspt=1200\tusrName=bob\tsev=7").unwrap();
        let mut ev = Event::new();
        apply(&l, &mut ev, &ParseOptions::default());
        assert_eq!(ev.get_str("observer.vendor"), Some("Microsoft"));
        assert_eq!(ev.get_str("event.code"), Some("15345"));
        assert_eq!(ev.get_str("source.ip"), Some("10.50.1.1"));
        assert_eq!(ev.get_str("destination.ip"), Some("2.10.20.20"));
        assert_eq!(ev.get_str("user.name"), Some("bob"));
        assert_eq!(ev.get_i64("event.severity"), Some(7));
        assert_eq!(ev.get("leef.attributes"), Some(&json!({"spt": "1200"})));
        assert_eq!(ev.get_str("log.format"), Some("leef"));
    }

    #[test]
    fn leef2_delimiter() {
        let l = parse(
            "LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^dstPort=22^proto=tcp",
        )
        .unwrap();
        assert_eq!(l.attributes.len(), 4);
        let l = parse("LEEF:2.0|V|P|1|41|x5E|src=10.0.1.8^dstPort=22").unwrap();
        let mut ev = Event::new();
        apply(&l, &mut ev, &ParseOptions::default());
        assert_eq!(ev.get_i64("destination.port"), Some(22));
        assert!(parse("LEEF:1.0|V|P").is_none());
    }

    #[test]
    fn truncated_variants_do_not_panic() {
        let s = "LEEF:2.0|Ven|Pröd|1|41|x5E|src=10.0.1.8^dst=10.0.0.5^usrName=ä";
        for (i, _) in s.char_indices() {
            for v in [&s[..i], &s[i..]] {
                if let Some(l) = parse(v) {
                    apply(&l, &mut Event::new(), &ParseOptions::default());
                }
            }
        }
    }
}
