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
