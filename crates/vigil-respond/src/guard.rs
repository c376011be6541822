//! The never-block allowlist: addresses no playbook and no person may put on
//! the blocklist (the server's own, loopback, configured admin networks,
//! and by default the private ranges).

use std::net::IpAddr;

use ipnet::IpNet;

/// Ranges that are never blocked whatever the configuration says: blocking
/// them locks the server out of itself or means nothing on the wire.
const ALWAYS: &[(&str, &str)] = &[
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("0.0.0.0/8", "unspecified"),
    ("::/128", "unspecified"),
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("ff00::/8", "multicast"),
    ("255.255.255.255/32", "broadcast"),
];

/// Private ranges, never blocked while `never_block_private` is on.
const PRIVATE: &[(&str, &str)] = &[
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("fc00::/7", "private (unique local)"),
];

/// Shortest IPv4 prefix that may be blocked.
pub const MIN_PREFIX_V4: u8 = 8;
/// Shortest IPv6 prefix that may be blocked.
pub const MIN_PREFIX_V6: u8 = 32;

/// The networks that must never be blocked, each with why.
#[derive(Debug, Clone)]
pub struct NeverBlock {
    nets: Vec<(IpNet, String)>,
}

impl NeverBlock {
    /// The built-in ranges, the private ranges when `private`, and `extra`
    /// (configured admin networks, the server's own addresses).
    pub fn new(extra: &[IpNet], private: bool) -> NeverBlock {
        let builtin = ALWAYS
            .iter()
            .chain(if private { PRIVATE } else { &[] })
            .filter_map(|(n, why)| Some((n.parse::<IpNet>().ok()?, (*why).to_owned())));
        let configured = extra
            .iter()
            .map(|n| (n.trunc(), "in the never-block allowlist".to_owned()));
        NeverBlock {
            nets: builtin.chain(configured).collect(),
        }
    }

    /// Whether `net` may be blocked: it must not overlap a never-block
    /// network and must not be wider than [`MIN_PREFIX_V4`]/[`MIN_PREFIX_V6`].
    pub fn check(&self, net: &IpNet) -> Result<(), String> {
        let net = canonical_net(*net);
        let min = match net {
            IpNet::V4(_) => MIN_PREFIX_V4,
            IpNet::V6(_) => MIN_PREFIX_V6,
        };
        if net.prefix_len() < min {
            return Err(format!(
                "{net} is wider than /{min}; block smaller networks"
            ));
        }
        for (n, why) in &self.nets {
            if n.contains(&net.network()) || net.contains(&n.network()) {
                return Err(format!(
                    "{} overlaps {n} ({why}), which is never blocked",
                    show(&net)
                ));
            }
        }
        Ok(())
    }
}

/// An IPv4-mapped or NAT64 IPv6 address as the IPv4 address inside it.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    vigil_alert::netguard::canonical(ip)
}

/// A network with host bits cleared; a single IPv4-mapped IPv6 host as IPv4.
pub fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if v6.prefix_len() == 128 {
            return IpNet::from(canonical_ip(IpAddr::V6(v6.addr())));
        }
    }
    net.trunc()
}

/// Parses an address (`203.0.113.9`) or a network (`203.0.113.0/24`);
/// a network with host bits set is refused rather than guessed at.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(IpNet::from(canonical_ip(ip)));
    }
    let net: IpNet = t
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
    if net.trunc() != net {
        return Err(format!(
            "{s:?} has bits set past the /{} prefix (did you mean {}?)",
            net.prefix_len(),
            net.trunc()
        ));
    }
    Ok(canonical_net(net))
}

/// How an entry is written: a single host as a bare address, else CIDR.
pub fn show(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        parse_net(s).unwrap()
    }

    #[test]
    fn loopback_private_admin_nets_and_wide_nets_are_refused() {
        let g = NeverBlock::new(&[n("198.51.100.0/24")], true);
        for bad in [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "10.1.2.3",
            "192.168.0.0/16",
            "198.51.100.7",
            "198.51.0.0/16",
            "0.0.0.0/0",
            "128.0.0.0/1",
            "2001::/16",
        ] {
            assert!(g.check(&n(bad)).is_err(), "{bad} should be refused");
        }
        for ok in ["203.0.113.9", "203.0.113.0/24", "2001:db8::1"] {
            assert!(g.check(&n(ok)).is_ok(), "{ok} should be allowed");
        }
        let e = g.check(&n("198.51.100.7")).unwrap_err();
        assert!(e.contains("never-block allowlist"), "{e}");
        assert!(NeverBlock::new(&[], false).check(&n("10.1.2.3")).is_ok());
    }

    #[test]
    fn parsing_is_strict_and_canonical() {
        assert_eq!(show(&n("::ffff:203.0.113.9")), "203.0.113.9");
        assert_eq!(show(&n("203.0.113.0/24")), "203.0.113.0/24");
        assert!(parse_net("203.0.113.9/24").is_err());
        assert!(parse_net("203.0.113.9; rm -rf /").is_err());
        assert!(parse_net("").is_err());
    }
}
