//! `enrich_geoip`: MaxMind GeoLite2/GeoIP2 City and ASN lookups.

use std::net::IpAddr;
use std::path::Path;

use serde_json::{json, Map, Value};

/// The opened databases; either may be absent.
#[derive(Default)]
pub struct GeoIp {
    city: Option<maxminddb::Reader<Vec<u8>>>,
    asn: Option<maxminddb::Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("city", &self.city.is_some())
            .field("asn", &self.asn.is_some())
            .finish()
    }
}

fn open(path: Option<&Path>, what: &str) -> Result<Option<maxminddb::Reader<Vec<u8>>>, String> {
    path.map(|p| {
        maxminddb::Reader::open_readfile(p)
            .map_err(|e| format!("opening the GeoIP {what} database {}: {e}", p.display()))
    })
    .transpose()
}

impl GeoIp {
    /// Opens the configured databases; a configured file that cannot be
    /// read is an error (a missing setting is not).
    pub fn open(city: Option<&Path>, asn: Option<&Path>) -> Result<GeoIp, String> {
        Ok(GeoIp {
            city: open(city, "City")?,
            asn: open(asn, "ASN")?,
        })
    }

    /// Whether any database is configured.
    pub fn available(&self) -> bool {
        self.city.is_some() || self.asn.is_some()
    }

    /// What the databases know about `ip` (`geo.*` and `as.*` in ECS
    /// names); `None` when neither has it.
    pub fn lookup(&self, ip: IpAddr) -> Option<Value> {
        let mut out = Map::new();
        if let Some(r) = &self.city {
            if let Ok(c) = r.lookup::<maxminddb::geoip2::City>(ip) {
                let en = |names: Option<std::collections::BTreeMap<&str, &str>>| {
                    names.and_then(|n| n.get("en").map(|s| s.to_string()))
                };
                if let Some(country) = c.country {
                    if let Some(iso) = country.iso_code {
                        out.insert("geo.country_iso_code".into(), iso.into());
                    }
                    if let Some(n) = en(country.names) {
                        out.insert("geo.country_name".into(), n.into());
                    }
                }
                if let Some(n) = c.city.and_then(|c| en(c.names)) {
                    out.insert("geo.city_name".into(), n.into());
                }
                if let Some(loc) = c.location {
                    if let (Some(lat), Some(lon)) = (loc.latitude, loc.longitude) {
                        out.insert("geo.location".into(), json!({"lat": lat, "lon": lon}));
                    }
                }
            }
        }
        if let Some(r) = &self.asn {
            if let Ok(a) = r.lookup::<maxminddb::geoip2::Asn>(ip) {
                if let Some(n) = a.autonomous_system_number {
                    out.insert("as.number".into(), n.into());
                }
                if let Some(o) = a.autonomous_system_organization {
                    out.insert("as.organization.name".into(), o.into());
                }
            }
        }
        (!out.is_empty()).then_some(Value::Object(out))
    }
}

/// Builds small MaxMind DB files for tests: one IPv4 /24 mapped to a record.
#[cfg(test)]
pub(crate) mod testdb {
    /// A control byte (and the extended type byte for types above 7).
    fn ctrl(ty: u8, size: usize) -> Vec<u8> {
        assert!(size < 29 + 256);
        // Sizes from 29 take one byte after the type bytes.
        let (low, extra) = if size < 29 {
            (size as u8, vec![])
        } else {
            (29, vec![(size - 29) as u8])
        };
        let head = if ty <= 7 {
            vec![(ty << 5) | low]
        } else {
            vec![low, ty - 7]
        };
        [head, extra].concat()
    }

    /// A value in the MaxMind DB data format.
    pub enum V<'a> {
        S(&'a str),
        U16(u16),
        U32(u32),
        U64(u64),
        F64(f64),
        Map(Vec<(&'a str, V<'a>)>),
        Arr(Vec<V<'a>>),
    }

    /// Encodes `v`.
    pub fn enc(v: &V<'_>) -> Vec<u8> {
        match v {
            V::S(s) => [ctrl(2, s.len()), s.as_bytes().to_vec()].concat(),
            V::U16(n) => [ctrl(5, 2), n.to_be_bytes().to_vec()].concat(),
            V::U32(n) => [ctrl(6, 4), n.to_be_bytes().to_vec()].concat(),
            V::U64(n) => [ctrl(9, 8), n.to_be_bytes().to_vec()].concat(),
            V::F64(f) => [ctrl(3, 8), f.to_be_bytes().to_vec()].concat(),
            V::Map(pairs) => {
                let mut out = ctrl(7, pairs.len());
                for (k, v) in pairs {
                    out.extend(enc(&V::S(k)));
                    out.extend(enc(v));
                }
                out
            }
            V::Arr(items) => {
                let mut out = ctrl(11, items.len());
                for i in items {
                    out.extend(enc(i));
                }
                out
            }
        }
    }

    /// An IPv4 database mapping `net`/24 to `record`.
    pub fn build(db_type: &str, net: [u8; 3], record: &V<'_>) -> Vec<u8> {
        const NODES: u32 = 24;
        let addr = u32::from_be_bytes([net[0], net[1], net[2], 0]);
        let mut out = Vec::new();
        for i in 0..NODES {
            let bit = (addr >> (31 - i)) & 1;
            // The path's next node, or at the /24 the record (data offset 0).
            let on = if i == NODES - 1 { NODES + 16 } else { i + 1 };
            let (left, right) = if bit == 0 { (on, NODES) } else { (NODES, on) };
            out.extend(&left.to_be_bytes()[1..]);
            out.extend(&right.to_be_bytes()[1..]);
        }
        out.extend([0u8; 16]);
        out.extend(enc(record));
        out.extend(b"\xab\xcd\xefMaxMind.com");
        out.extend(enc(&V::Map(vec![
            ("binary_format_major_version", V::U16(2)),
            ("binary_format_minor_version", V::U16(0)),
            ("build_epoch", V::U64(1_700_000_000)),
            ("database_type", V::S(db_type)),
            ("description", V::Map(vec![("en", V::S("test"))])),
            ("ip_version", V::U16(4)),
            ("languages", V::Arr(vec![V::S("en")])),
            ("node_count", V::U32(NODES)),
            ("record_size", V::U16(24)),
        ])));
        out
    }

    /// City and ASN databases for 203.0.113.0/24, written into `dir`.
    pub fn write(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let city = build(
            "GeoLite2-City",
            [203, 0, 113],
            &V::Map(vec![
                (
                    "city",
                    V::Map(vec![("names", V::Map(vec![("en", V::S("Sydney"))]))]),
                ),
                (
                    "country",
                    V::Map(vec![
                        ("iso_code", V::S("AU")),
                        ("names", V::Map(vec![("en", V::S("Australia"))])),
                    ]),
                ),
                (
                    "location",
                    V::Map(vec![
                        ("latitude", V::F64(-33.86)),
                        ("longitude", V::F64(151.2)),
                    ]),
                ),
            ]),
        );
        let asn = build(
            "GeoLite2-ASN",
            [203, 0, 113],
            &V::Map(vec![
                ("autonomous_system_number", V::U32(64496)),
                ("autonomous_system_organization", V::S("Example Net")),
            ]),
        );
        let (c, a) = (dir.join("city.mmdb"), dir.join("asn.mmdb"));
        std::fs::write(&c, city).unwrap();
        std::fs::write(&a, asn).unwrap();
        (c, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_city_and_asn() {
        let dir = tempfile::tempdir().unwrap();
        let (city, asn) = testdb::write(dir.path());
        let g = GeoIp::open(Some(&city), Some(&asn)).unwrap();
        assert!(g.available());
        let v = g.lookup("203.0.113.9".parse().unwrap()).unwrap();
        assert_eq!(v["geo.country_iso_code"], "AU");
        assert_eq!(v["geo.country_name"], "Australia");
        assert_eq!(v["geo.city_name"], "Sydney");
        assert_eq!(v["geo.location"]["lat"], -33.86);
        assert_eq!(v["as.number"], 64496);
        assert_eq!(v["as.organization.name"], "Example Net");
        assert_eq!(g.lookup("198.51.100.1".parse().unwrap()), None);
        assert_eq!(g.lookup("2001:db8::1".parse().unwrap()), None);
        // Only the ASN database: only AS fields.
        let g = GeoIp::open(None, Some(&asn)).unwrap();
        let v = g.lookup("203.0.113.200".parse().unwrap()).unwrap();
        assert!(v.get("geo.country_iso_code").is_none());
        assert_eq!(v["as.number"], 64496);
    }

    #[test]
    fn a_configured_database_that_cannot_be_read_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("broken.mmdb");
        std::fs::write(&bad, b"not a database").unwrap();
        let e = GeoIp::open(Some(&bad), None).unwrap_err();
        assert!(e.starts_with("opening the GeoIP City database "), "{e}");
        assert!(!GeoIp::open(None, None).unwrap().available());
    }
}
