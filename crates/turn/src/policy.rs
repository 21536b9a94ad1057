//! Which peer addresses an allocation may reach. By default nothing inside the operator's network:
//! loopback, private, shared (CGNAT), link-local, multicast, reserved and unspecified addresses and the
//! server's own addresses are refused, so a relay cannot be turned against the host or its LAN (SSRF).
//! `allowed` ranges (coturn's `allowed-peer-ip`) win over every refusal; `denied` ranges add refusals.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An inclusive range of addresses of one family, written `IP` or `IP1-IP2` as in coturn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    first: IpAddr,
    last: IpAddr,
}

impl IpRange {
    pub fn single(ip: IpAddr) -> IpRange {
        IpRange { first: ip, last: ip }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.first, self.last, ip) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => (a..=b).contains(&x),
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => (a..=b).contains(&x),
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<IpRange, String> {
        let parse =
            |s: &str| s.trim().parse::<IpAddr>().map(canonical).map_err(|_| format!("{s:?} is not an IP address"));
        let (first, last) = match text.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => (parse(text)?, parse(text)?),
        };
        if first.is_ipv4() != last.is_ipv4() || first > last {
            return Err(format!("{text:?}: give IP or IP1-IP2 of one family with IP1 <= IP2"));
        }
        Ok(IpRange { first, last })
    }
}

/// A socket address as the peer rules compare it: an IPv4-mapped IPv6 address is its IPv4 address.
pub fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical(addr.ip()), addr.port())
}

/// IPv4-mapped IPv6 addresses are their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The peer-address rules of one server.
#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    /// Let loopback peers through (coturn's `--allow-loopback-peers`), for tests and local setups.
    pub allow_loopback: bool,
    /// Ranges always allowed (over every default refusal and over `denied`).
    pub allowed: Vec<IpRange>,
    /// Ranges refused in addition to the default ones.
    pub denied: Vec<IpRange>,
    /// The server's own addresses (listening and relay addresses): refused unless allowed.
    pub own: Vec<IpAddr>,
}

impl PeerPolicy {
    /// Whether a permission, channel or Send to `peer` is allowed.
    pub fn permits(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        if self.allowed.iter().any(|r| r.contains(peer)) {
            return true;
        }
        if self.denied.iter().any(|r| r.contains(peer)) {
            return false;
        }
        if peer.is_loopback() {
            return self.allow_loopback;
        }
        if self.own.iter().any(|own| canonical(*own) == peer) || is_internal(peer) {
            return false;
        }
        true
    }
}

/// Addresses that are not a public unicast host: private, shared, link-local, multicast, reserved, documentation-free
/// but otherwise special-use ranges of IANA's registries that reach the operator's own networks.
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || a == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT), RFC 6598
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64: reaches IPv4 inside
        || first == 0x2002 // 6to4: embeds any IPv4
        || (first == 0x2001 && ip.segments()[1] == 0) // Teredo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_refused_by_default() {
        let policy = PeerPolicy { own: vec![ip("203.0.113.5")], ..Default::default() };
        for refused in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "203.0.113.5",
        ] {
            assert!(!policy.permits(ip(refused)), "{refused} must be refused");
        }
        for allowed in ["8.8.8.8", "203.0.113.6", "2001:db8::1", "2a00:1450::1", "100.128.0.1"] {
            assert!(policy.permits(ip(allowed)), "{allowed} must be allowed");
        }
    }

    #[test]
    fn switches_and_ranges() {
        let mut policy = PeerPolicy { allow_loopback: true, ..Default::default() };
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(!policy.permits(ip("10.0.0.1")));
        policy.allowed.push("10.0.0.0-10.0.0.255".parse().unwrap());
        policy.denied.push("8.8.8.8".parse().unwrap());
        assert!(policy.permits(ip("10.0.0.9")));
        assert!(!policy.permits(ip("10.0.1.0")));
        assert!(!policy.permits(ip("8.8.8.8")));
        assert!(policy.permits(ip("8.8.4.4")));
        policy.denied.push("127.0.0.1".parse().unwrap());
        assert!(!policy.permits(ip("127.0.0.1")), "denied wins over allow_loopback");
        assert!("10.0.0.9-10.0.0.1".parse::<IpRange>().is_err());
        assert!("10.0.0.1-::1".parse::<IpRange>().is_err());
        assert!("nope".parse::<IpRange>().is_err());
    }
}
