//! `[response]`: where playbooks come from and the limits they run under.

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use vigil_alert::netguard::Cidr;

/// Longest action timeout a playbook may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest TTL `max_ttl_secs` may be set to (one year).
pub const MAX_TTL_LIMIT: u64 = 365 * 86_400;

/// The `[response]` section of `vigil.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ResponseConfig {
    /// Directory of playbook files (`*.yml`, `*.yaml`); default
    /// `DATA_DIR/playbooks` when it exists.
    pub playbook_dir: Option<PathBuf>,
    /// More playbook files, loaded after the directory.
    pub playbooks: Vec<PathBuf>,
    /// MaxMind GeoLite2/GeoIP2 City database (`.mmdb`) for `enrich_geoip`.
    pub geoip_city_db: Option<PathBuf>,
    /// MaxMind GeoLite2/GeoIP2 ASN database (`.mmdb`) for `enrich_geoip`.
    pub geoip_asn_db: Option<PathBuf>,
    /// Networks never blocked (admin networks, jump hosts, the server's
    /// upstream); loopback and the server's own listen addresses always are.
    pub never_block: Vec<IpNet>,
    /// Also never block the private ranges (10/8, 172.16/12, 192.168/16,
    /// 100.64/10, fc00::/7).
    pub never_block_private: bool,
    /// Longest blocklist TTL, in seconds (playbooks and manual adds).
    pub max_ttl_secs: u64,
    /// Timeout of an action that names none, in seconds.
    pub default_timeout_secs: u64,
    /// Addresses in refused ranges that `webhook` actions may reach anyway
    /// (see `[alerts] outbound_allow`).
    pub outbound_allow: Vec<Cidr>,
    /// Most entries on the blocklist.
    pub max_blocklist_entries: usize,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        Self {
            playbook_dir: None,
            playbooks: Vec::new(),
            geoip_city_db: None,
            geoip_asn_db: None,
            never_block: Vec::new(),
            never_block_private: true,
            max_ttl_secs: 30 * 86_400,
            default_timeout_secs: 10,
            outbound_allow: Vec::new(),
            max_blocklist_entries: 100_000,
        }
    }
}

impl ResponseConfig {
    /// Checks ranges that TOML types cannot; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_TTL_LIMIT).contains(&self.max_ttl_secs) {
            return Err(format!(
                "response.max_ttl_secs must be 1..={MAX_TTL_LIMIT}, got {}",
                self.max_ttl_secs
            ));
        }
        if !(1..=MAX_TIMEOUT.as_secs()).contains(&self.default_timeout_secs) {
            return Err(format!(
                "response.default_timeout_secs must be 1..={}, got {}",
                MAX_TIMEOUT.as_secs(),
                self.default_timeout_secs
            ));
        }
        if !(1..=10_000_000).contains(&self.max_blocklist_entries) {
            return Err(format!(
                "response.max_blocklist_entries must be 1..=10000000, got {}",
                self.max_blocklist_entries
            ));
        }
        Ok(())
    }

    /// The longest TTL.
    pub fn max_ttl(&self) -> Duration {
        Duration::from_secs(self.max_ttl_secs)
    }

    /// The default action timeout.
    pub fn default_timeout(&self) -> Duration {
        Duration::from_secs(self.default_timeout_secs)
    }
}
