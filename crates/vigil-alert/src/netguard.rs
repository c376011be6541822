//! Outbound connection policy: which addresses the server may connect to.
//!
//! Vigil connects out to push checkpoints to witnesses and to deliver alert
//! notifications (webhooks, chat, PagerDuty, syslog). Those destinations come
//! from configuration, and a host name in it can resolve to anything, so
//! every outbound address is
//! checked by an [`OutboundPolicy`]: loopback, private, link-local (including
//! the cloud metadata service), shared-address (CGNAT), unspecified,
//! multicast, broadcast and reserved addresses are refused unless an entry of
//! the policy's allowlist (`[ledger] witness_allow`, `[alerts] outbound_allow`)
//! covers them. IPv4-mapped (`::ffff:a.b.c.d`) and
//! NAT64 (`64:ff9b::a.b.c.d`) IPv6 addresses are judged as the IPv4 address
//! inside them.
//!
//! [`http_client`] builds a `reqwest` client whose resolver drops refused
//! addresses, which ignores proxy variables, follows no redirect and times
//! out. Because `reqwest` does not call the resolver for IP literals, every
//! URL must also pass [`OutboundPolicy::check_url`]; [`SafeClient`] does both.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Time allowed to establish a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed between two reads of a response.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole request, connection included.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or a bare
/// address meaning a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network `addr/prefix`; `None` if the prefix is too long or `addr`
    /// has bits set past the prefix.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return None;
        }
        let c = Cidr { addr, prefix };
        (c.network_bits() == bits(addr)).then_some(c)
    }

    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
        Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> Cidr {
        let [a, b, c, d, e, f, g, h] = segments;
        Cidr {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    fn mask(&self) -> u128 {
        let width: u32 = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == 0 {
            0
        } else {
            let all = if width == 32 {
                u32::MAX as u128
            } else {
                u128::MAX
            };
            (all >> (width - self.prefix as u32)) << (width - self.prefix as u32)
        }
    }

    fn network_bits(&self) -> u128 {
        bits(self.addr) & self.mask()
    }

    /// Whether `ip` lies in this network (an IPv4 network never contains an
    /// IPv6 address, nor the reverse).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && bits(ip) & self.mask() == self.network_bits()
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
        };
        Cidr::new(addr, prefix).ok_or_else(|| {
            format!("{s:?}: address has bits set past the /{prefix} prefix (host bits)")
        })
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why an outbound connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The address is in a refused range.
    #[error("address {ip} is {range} and not allowlisted ([ledger] witness_allow, [alerts] outbound_allow)")]
    Address {
        /// The refused address.
        ip: IpAddr,
        /// What kind of range it is in.
        range: &'static str,
    },
    /// A host name resolved only to refused addresses (or to none).
    #[error("{host} resolves to no allowed address ({detail})")]
    NoAllowedAddress {
        /// The host name.
        host: String,
        /// The refused addresses and why, or the resolver's error.
        detail: String,
    },
    /// The URL's scheme is not `http` or `https`.
    #[error("URL scheme {0:?} is not allowed (only http and https)")]
    Scheme(String),
    /// The URL has no host.
    #[error("URL has no host")]
    NoHost,
}

/// Ranges refused unless allowlisted, with the name used in messages.
/// Embedded IPv4 addresses (mapped, NAT64) are unwrapped before this is
/// consulted.
const REFUSED: &[(Cidr, &str)] = &[
    (Cidr::v4(0, 0, 0, 0, 8), "unspecified (\"this network\")"),
    (Cidr::v4(10, 0, 0, 0, 8), "private"),
    (Cidr::v4(100, 64, 0, 0, 10), "shared address space (CGNAT)"),
    (Cidr::v4(127, 0, 0, 0, 8), "loopback"),
    (
        Cidr::v4(169, 254, 169, 254, 32),
        "the cloud metadata service",
    ),
    (Cidr::v4(169, 254, 0, 0, 16), "link-local"),
    (Cidr::v4(172, 16, 0, 0, 12), "private"),
    (Cidr::v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
    (Cidr::v4(192, 168, 0, 0, 16), "private"),
    (Cidr::v4(224, 0, 0, 0, 4), "multicast"),
    (Cidr::v4(255, 255, 255, 255, 32), "broadcast"),
    (Cidr::v4(240, 0, 0, 0, 4), "reserved"),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (
        Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible (deprecated)",
    ),
    (
        Cidr::v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128),
        "the cloud metadata service",
    ),
    (
        Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "private (unique local)",
    ),
    (Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (
        Cidr::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (deprecated)",
    ),
    (Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// The IPv4 address inside an IPv4-mapped (`::ffff:0:0/96`) or NAT64
/// well-known-prefix (`64:ff9b::/96`) address; other addresses unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    if let IpAddr::V6(v6) = ip {
        let s = v6.segments();
        let embedded =
            (s[..6] == [0, 0, 0, 0, 0, 0xffff]) || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]);
        if embedded {
            let o = v6.octets();
            return IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
        }
    }
    ip
}

/// Which outbound addresses are allowed: every public address, plus the
/// refused ranges' addresses that an allowlist entry covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    allow: Vec<Cidr>,
}

impl OutboundPolicy {
    /// A policy with the allowlist `allow` (`[ledger] witness_allow`).
    pub fn new(allow: Vec<Cidr>) -> Self {
        Self { allow }
    }

    /// The allowlist.
    pub fn allow(&self) -> &[Cidr] {
        &self.allow
    }

    /// Whether a connection to `ip` is allowed.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let c = canonical(ip);
        if self.allow.iter().any(|n| n.contains(c) || n.contains(ip)) {
            return Ok(());
        }
        match REFUSED.iter().find(|(net, _)| net.contains(c)) {
            Some((_, range)) => Err(Refused::Address { ip, range }),
            None => Ok(()),
        }
    }

    /// Checks a URL before it is requested: the scheme must be `http` or
    /// `https`, and a host given as an IP literal must be allowed (`reqwest`
    /// does not pass IP literals through the resolver). Host names are
    /// checked when [`http_client`]'s resolver resolves them.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(Refused::Scheme(other.to_owned())),
        }
        let host = url.host_str().ok_or(Refused::NoHost)?;
        if let Some(ip) = ip_literal(host) {
            self.check(ip)?;
        }
        Ok(())
    }

    /// Resolves `host` (a name or an IP literal) and keeps the allowed
    /// addresses, with `port`. Errors if none remain.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        if let Some(ip) = ip_literal(host) {
            self.check(ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found =
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| Refused::NoAllowedAddress {
                    host: host.to_owned(),
                    detail: format!("lookup failed: {e}"),
                })?;
        self.filter(host, found)
    }

    fn filter(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Refused> {
        let mut ok = Vec::new();
        let mut refused = Vec::new();
        for a in addrs {
            match self.check(a.ip()) {
                Ok(()) => ok.push(a),
                Err(e) => refused.push(e.to_string()),
            }
        }
        if ok.is_empty() {
            return Err(Refused::NoAllowedAddress {
                host: host.to_owned(),
                detail: if refused.is_empty() {
                    "no addresses".into()
                } else {
                    refused.join("; ")
                },
            });
        }
        Ok(ok)
    }
}

/// `host` as an IP address if it is a literal (IPv6 with or without brackets).
fn ip_literal(host: &str) -> Option<IpAddr> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.parse().ok()
}

/// A `reqwest` resolver that drops the addresses a policy refuses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<OutboundPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = policy.resolve(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An HTTP client for outbound requests under `policy`: host names resolve
/// only to allowed addresses, proxy environment variables are ignored (a
/// proxy would connect on our behalf, past the resolver), redirects are not
/// followed, and connect/read/total time out after 5/10/15 s.
///
/// IP-literal hosts bypass the resolver: check every URL with
/// [`OutboundPolicy::check_url`] first, or use [`SafeClient`].
pub fn http_client(policy: &OutboundPolicy) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver {
            policy: Arc::new(policy.clone()),
        }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// [`http_client`] together with its policy, so that no request can skip
/// [`OutboundPolicy::check_url`].
#[derive(Debug, Clone)]
pub struct SafeClient {
    client: reqwest::Client,
    policy: OutboundPolicy,
}

impl SafeClient {
    /// Builds the client.
    pub fn new(policy: OutboundPolicy) -> reqwest::Result<SafeClient> {
        Ok(SafeClient {
            client: http_client(&policy)?,
            policy,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// A POST to `url`, if the policy allows the URL.
    pub fn post(&self, url: &reqwest::Url) -> Result<reqwest::RequestBuilder, Refused> {
        self.policy.check_url(url)?;
        Ok(self.client.post(url.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(p: &OutboundPolicy, ip: &str) -> bool {
        p.check(ip.parse().unwrap()).is_err()
    }

    #[test]
    fn refuses_every_special_range() {
        let p = OutboundPolicy::default();
        for ip in [
            // loopback
            "127.0.0.1",
            "127.255.255.254",
            "::1",
            // private
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "192.168.255.255",
            "fc00::1",
            "fd12:3456::1",
            // link-local and metadata
            "169.254.0.1",
            "169.254.169.254",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            // unspecified
            "0.0.0.0",
            "0.1.2.3",
            "::",
            // CGNAT
            "100.64.0.1",
            "100.127.255.255",
            // multicast, broadcast, reserved
            "224.0.0.1",
            "239.255.255.255",
            "ff02::1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.170",
            // deprecated IPv6 forms
            "fec0::1",
            "::7f00:1",
        ] {
            assert!(refused(&p, ip), "{ip} should be refused");
        }
    }

    #[test]
    fn allows_public_and_documentation_addresses() {
        let p = OutboundPolicy::default();
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.0.2.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "11.0.0.1",
            "2001:db8::1",
            "2606:4700:4700::1111",
            "fbff::1",
        ] {
            assert!(!refused(&p, ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn ipv4_mapped_and_nat64_are_judged_as_ipv4() {
        let p = OutboundPolicy::default();
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::ffff:192.168.1.1",
            "::ffff:100.64.0.1",
            "::ffff:0.0.0.0",
            "64:ff9b::169.254.169.254",
            "64:ff9b::127.0.0.1",
        ] {
            assert!(refused(&p, ip), "{ip} should be refused");
        }
        assert!(!refused(&p, "::ffff:8.8.8.8"));
        assert!(!refused(&p, "64:ff9b::8.8.8.8"));
        let allow = OutboundPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(!refused(&allow, "::ffff:127.0.0.1"));
        assert!(refused(&allow, "::ffff:127.0.0.2"));
    }

    #[test]
    fn metadata_error_names_the_range() {
        let e = OutboundPolicy::default()
            .check("169.254.169.254".parse().unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("metadata"), "{e}");
    }

    #[test]
    fn allowlist_opens_only_its_networks() {
        let p = OutboundPolicy::new(vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
        ]);
        assert!(!refused(&p, "127.0.0.1"));
        assert!(refused(&p, "127.0.0.2"));
        assert!(!refused(&p, "10.1.200.3"));
        assert!(refused(&p, "10.2.0.1"));
        assert!(!refused(&p, "fd00:ec2::254"));
        assert!(refused(&p, "fc00::1"));
        assert!(refused(&p, "::1"));
        assert!(refused(&p, "169.254.169.254"));
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert_eq!(
            "192.0.2.1".parse::<Cidr>().unwrap().to_string(),
            "192.0.2.1/32"
        );
        assert!("0.0.0.0/0"
            .parse::<Cidr>()
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(!"0.0.0.0/0"
            .parse::<Cidr>()
            .unwrap()
            .contains("::1".parse().unwrap()));
        assert!("::/0"
            .parse::<Cidr>()
            .unwrap()
            .contains("::1".parse().unwrap()));
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "::/129",
            "nope",
            "10.0.0.0/x",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn urls_are_checked_before_sending() {
        let p = OutboundPolicy::default();
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(p.check_url(&url("https://witness.example/add")).is_ok());
        assert!(p.check_url(&url("http://198.51.100.7:8080/x")).is_ok());
        for bad in [
            "http://127.0.0.1/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0/",
            "file:///etc/passwd",
            "ftp://198.51.100.7/",
        ] {
            assert!(p.check_url(&url(bad)).is_err(), "{bad} should be refused");
        }
        let allow = OutboundPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(allow.check_url(&url("http://127.0.0.1:9/")).is_ok());
        assert!(allow.check_url(&url("gopher://127.0.0.1/")).is_err());
    }

    #[tokio::test]
    async fn resolver_drops_refused_addresses() {
        let p = OutboundPolicy::default();
        let e = p.resolve("localhost", 80).await.unwrap_err();
        assert!(matches!(e, Refused::NoAllowedAddress { .. }), "{e}");
        let e = p.resolve("127.0.0.1", 80).await.unwrap_err();
        assert!(matches!(e, Refused::Address { .. }), "{e}");
        let mixed = [
            "127.0.0.1:80".parse().unwrap(),
            "198.51.100.7:80".parse().unwrap(),
            "[::ffff:10.0.0.1]:80".parse().unwrap(),
        ];
        assert_eq!(
            p.filter("h", mixed).unwrap(),
            vec!["198.51.100.7:80".parse::<SocketAddr>().unwrap()]
        );
        assert!(p.filter("h", []).is_err());
        let allow = OutboundPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let ok = allow.resolve("127.0.0.1", 80).await.unwrap();
        assert_eq!(ok, vec!["127.0.0.1:80".parse::<SocketAddr>().unwrap()]);
    }

    #[tokio::test]
    async fn client_refuses_localhost_by_name() {
        // A listener that would answer if the client connected.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = SafeClient::new(OutboundPolicy::default()).unwrap();
        let url = reqwest::Url::parse(&format!("http://localhost:{port}/")).unwrap();
        let e = c.post(&url).unwrap().send().await.unwrap_err();
        assert!(e.is_connect() || e.is_request(), "{e:?}");
        let url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        assert!(c.post(&url).is_err());
    }
}
