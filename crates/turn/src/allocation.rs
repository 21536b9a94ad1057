//! One allocation's state: its lifetime, permissions, channel bindings and bandwidth buckets, with
//! time as an input. The rules of RFC 8656 §9 and §12 for what a binding may change live here; who may
//! allocate and what the peers may be is the server's business.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Permissions last 300 s (RFC 8656 §9), channel bindings 600 s (§12).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// After a binding expires, its channel number and peer stay reserved this long (§12).
pub const CHANNEL_COOLDOWN: Duration = Duration::from_secs(300);
/// Permissions and channels per allocation at most (each is a few dozen bytes; a client cannot grow memory).
pub const MAX_PERMISSIONS: usize = 64;
pub const MAX_CHANNELS: usize = 64;

/// Transport between client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A client's 5-tuple: transport, the client's address and the server address it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub transport: Transport,
    pub client: SocketAddr,
    pub server: SocketAddr,
}

/// Why a ChannelBind is refused (400 Bad Request in every case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindError {
    /// The channel is bound to another peer (or was, less than 5 minutes ago).
    ChannelTaken,
    /// The peer is bound to another channel.
    PeerTaken,
    TooMany,
}

#[derive(Debug, Clone, Copy)]
struct Channel {
    number: u16,
    peer: SocketAddr,
    expires: Instant,
}

/// A token bucket of bytes per second (burst: one second's worth).
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(now: Instant, rate: u64) -> Bucket {
        Bucket { tokens: rate as f64, at: now }
    }

    /// Takes `bytes` if there are that many tokens; `rate` 0 is unlimited.
    pub fn take(&mut self, now: Instant, rate: u64, bytes: usize) -> bool {
        if rate == 0 {
            return true;
        }
        let rate = rate as f64;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now.max(self.at);
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }
}

/// One relayed transport address and what its client set up on it.
#[derive(Debug)]
pub struct Allocation {
    pub client: ClientKey,
    pub relay: SocketAddr,
    pub username: String,
    /// Who counts against the user quota (the REST id, or the whole username).
    pub user: String,
    pub key: [u8; 16],
    pub expires: Instant,
    /// The Allocate request that created it and its answer, for retransmissions.
    pub allocate_txid: [u8; 12],
    pub allocate_response: Vec<u8>,
    pub to_peer: Bucket,
    pub to_client: Bucket,
    permissions: Vec<(IpAddr, Instant)>,
    channels: Vec<Channel>,
}

impl Allocation {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        now: Instant,
        client: ClientKey,
        relay: SocketAddr,
        username: String,
        user: String,
        key: [u8; 16],
        lifetime: Duration,
        max_bps: u64,
    ) -> Allocation {
        Allocation {
            client,
            relay,
            username,
            user,
            key,
            expires: now + lifetime,
            allocate_txid: [0; 12],
            allocate_response: Vec::new(),
            to_peer: Bucket::new(now, max_bps),
            to_client: Bucket::new(now, max_bps),
            permissions: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// Installs or refreshes a permission for `ip`; false if there are too many.
    pub fn permit(&mut self, now: Instant, ip: IpAddr) -> bool {
        let expires = now + PERMISSION_LIFETIME;
        if let Some(p) = self.permissions.iter_mut().find(|(p, _)| *p == ip) {
            p.1 = expires;
            return true;
        }
        self.permissions.retain(|(_, e)| *e > now);
        if self.permissions.len() >= MAX_PERMISSIONS {
            return false;
        }
        self.permissions.push((ip, expires));
        true
    }

    /// Whether a live permission covers `ip`.
    pub fn permitted(&self, now: Instant, ip: IpAddr) -> bool {
        self.permissions.iter().any(|(p, e)| *p == ip && *e > now)
    }

    /// Binds `number` to `peer` or refreshes that binding (and the peer's permission).
    pub fn bind(&mut self, now: Instant, number: u16, peer: SocketAddr) -> Result<(), BindError> {
        let reserved = |c: &Channel| c.expires + CHANNEL_COOLDOWN > now;
        if self.channels.iter().any(|c| c.number == number && c.peer != peer && reserved(c)) {
            return Err(BindError::ChannelTaken);
        }
        if self.channels.iter().any(|c| c.peer == peer && c.number != number && reserved(c)) {
            return Err(BindError::PeerTaken);
        }
        self.channels.retain(|c| reserved(c));
        let expires = now + CHANNEL_LIFETIME;
        if let Some(c) = self.channels.iter_mut().find(|c| c.number == number) {
            c.expires = expires;
        } else if self.channels.len() >= MAX_CHANNELS {
            return Err(BindError::TooMany);
        } else {
            self.channels.push(Channel { number, peer, expires });
        }
        if !self.permit(now, peer.ip()) {
            return Err(BindError::TooMany);
        }
        Ok(())
    }

    /// The peer of a live channel.
    pub fn channel_peer(&self, now: Instant, number: u16) -> Option<SocketAddr> {
        self.channels.iter().find(|c| c.number == number && c.expires > now).map(|c| c.peer)
    }

    /// The live channel bound to `peer`.
    pub fn peer_channel(&self, now: Instant, peer: SocketAddr) -> Option<u16> {
        self.channels.iter().find(|c| c.peer == peer && c.expires > now).map(|c| c.number)
    }

    /// Drops expired permissions and channels past their cool-down.
    pub fn sweep(&mut self, now: Instant) {
        self.permissions.retain(|(_, e)| *e > now);
        self.channels.retain(|c| c.expires + CHANNEL_COOLDOWN > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocation(now: Instant) -> Allocation {
        let client = ClientKey {
            transport: Transport::Udp,
            client: "192.0.2.1:5000".parse().unwrap(),
            server: "192.0.2.2:3478".parse().unwrap(),
        };
        let relay = "192.0.2.2:50000".parse().unwrap();
        Allocation::new(now, client, relay, "u".into(), "u".into(), [0; 16], Duration::from_secs(600), 1000)
    }

    #[test]
    fn channel_binding_rules() {
        let t0 = Instant::now();
        let mut a = allocation(t0);
        let p1: SocketAddr = "198.51.100.1:1000".parse().unwrap();
        let p2: SocketAddr = "198.51.100.2:1000".parse().unwrap();
        assert_eq!(a.bind(t0, 0x4000, p1), Ok(()));
        assert!(a.permitted(t0, p1.ip()), "a binding installs a permission");
        assert_eq!(a.bind(t0, 0x4000, p2), Err(BindError::ChannelTaken));
        assert_eq!(a.bind(t0, 0x4001, p1), Err(BindError::PeerTaken));
        assert_eq!(a.bind(t0 + Duration::from_secs(500), 0x4000, p1), Ok(()), "refresh");
        assert_eq!(a.channel_peer(t0 + Duration::from_secs(1000), 0x4000), Some(p1));
        let expired = t0 + Duration::from_secs(1101);
        assert_eq!(a.channel_peer(expired, 0x4000), None);
        assert_eq!(a.bind(expired, 0x4000, p2), Err(BindError::ChannelTaken), "cool-down");
        let later = t0 + Duration::from_secs(1401);
        assert_eq!(a.bind(later, 0x4000, p2), Ok(()));
        assert_eq!(a.peer_channel(later, p2), Some(0x4000));
    }

    #[test]
    fn permissions_expire_after_five_minutes() {
        let t0 = Instant::now();
        let mut a = allocation(t0);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(a.permit(t0, ip));
        assert!(a.permitted(t0 + Duration::from_secs(299), ip));
        assert!(!a.permitted(t0 + Duration::from_secs(300), ip));
        for i in 0..MAX_PERMISSIONS as u8 {
            assert!(a.permit(t0, IpAddr::from([198, 51, 100, i])));
        }
        assert!(!a.permit(t0, "203.0.113.1".parse().unwrap()), "bounded");
    }

    #[test]
    fn bucket_caps_bytes_per_second() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0, 1000);
        assert!(b.take(t0, 1000, 600));
        assert!(!b.take(t0, 1000, 600));
        assert!(b.take(t0 + Duration::from_millis(300), 1000, 600));
        assert!(Bucket::new(t0, 0).take(t0, 0, 1_000_000));
    }
}
