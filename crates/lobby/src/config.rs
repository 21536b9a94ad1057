//! What a lobby server runs with: where it listens, its limits, how long interest matching waits
//! before falling back to random, what the page is told (ICE servers, when to say nobody was found),
//! and the optional Redis with its heartbeat TTL.

use crate::{Limits, TurnAccess};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// New connections accepted a second by default: far above what people arriving need (and what a
/// restarted lobby's users reconnecting at once need: Socket.IO clients spread their reconnects over
/// seconds), low enough that a reconnect storm cannot take the processor from the pairs talking.
pub const DEFAULT_ACCEPT_RATE: f64 = 1000.0;
/// New connections accepted a second from one address by default (after a burst of 500): a
/// reconnect storm from one address costs 50 handshakes a second; a crowd behind one address
/// (hundreds at once) connects at once. Behind a reverse proxy every connection comes from the
/// proxy's address: set it to 0 there (and pace in the proxy).
pub const DEFAULT_ACCEPT_RATE_PER_ADDRESS: f64 = 50.0;

/// One WebRTC ICE server as the page's `RTCPeerConnection` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:` / `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The lobby server's configuration.
#[derive(Debug, Clone)]
pub struct LobbyConfig {
    /// HTTP + Socket.IO listening address.
    pub listen: SocketAddr,
    /// Per-socket limits.
    pub limits: Limits,
    /// New connections accepted a second at most (in bursts of one second's worth; 0: no limit).
    pub accept_rate: f64,
    /// New connections from one client address (an IPv6 /64) accepted a second at most, after a
    /// burst of ten seconds' worth; more are held back, and refused beyond 10 s (0: no limit).
    pub accept_rate_per_address: f64,
    /// How long a waiter with interests holds out for a shared one before taking anyone.
    pub fallback_wait: Duration,
    /// ICE servers for the page (none by default: no third party is contacted unless configured).
    pub ice_servers: Vec<IceServer>,
    /// How long a user searches before the page says that nobody was found yet.
    pub no_partner_notice_after: Duration,
    /// Redis URL for scale-out over several processes (`redis://host:port/`).
    pub redis: Option<String>,
    /// Scaled out: how long this process's heartbeat outlives it. A process that dies without shutting
    /// down is noticed by the others after this long, and its sockets are purged from Redis.
    pub redis_ttl: Duration,
    /// The name registry (`http://host:port`) that `/registry/name/…` and `/registry/addr/…` are
    /// forwarded to; none: the page hides the name features.
    pub registry: Option<String>,
    /// How long a call rings before it times out.
    pub ring_timeout: Duration,
    /// A TURN relay whose short-lived credentials each matched user gets in `matched` (the secret
    /// never leaves the server).
    pub turn: Option<TurnAccess>,
    /// Every page uses relay candidates only and sends no host or server-reflexive candidate: no
    /// partner learns a user's address. Needs a TURN relay ([`LobbyConfig::turn`] or a `turn:` ICE
    /// server).
    pub relay_only: bool,
    /// HTTPS with this certificate and key (reloaded on SIGHUP); plain HTTP without.
    pub tls: Option<crate::tls::TlsFiles>,
    /// The privacy policy served at `/privacy` (an HTML page, linked from the page's footer), if any.
    pub privacy: Option<String>,
}

impl LobbyConfig {
    /// The defaults on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        LobbyConfig {
            listen,
            limits: Limits::default(),
            accept_rate: DEFAULT_ACCEPT_RATE,
            accept_rate_per_address: DEFAULT_ACCEPT_RATE_PER_ADDRESS,
            fallback_wait: Duration::from_secs(5),
            ice_servers: Vec::new(),
            no_partner_notice_after: Duration::from_secs(15),
            redis: None,
            redis_ttl: Duration::from_secs(5),
            registry: None,
            ring_timeout: Duration::from_secs(30),
            turn: None,
            relay_only: false,
            tls: None,
            privacy: None,
        }
    }

    /// Whether pages are given a TURN relay (minted credentials, or a configured `turn:` ICE server):
    /// only then can a user hide their address from the partner.
    pub fn has_relay(&self) -> bool {
        self.turn.is_some()
            || self.ice_servers.iter().flat_map(|s| &s.urls).any(|u| u.starts_with("turn:") || u.starts_with("turns:"))
    }

    /// The largest Engine.IO packet accepted: room for the largest signal or text plus framing.
    /// Anything larger is cut off by the transport; anything up to it gets a proper error ack.
    pub fn max_payload(&self) -> u64 {
        let largest = self.limits.signal_bytes.max(self.limits.text_chars * 4) as u64;
        (largest * 2 + 16 * 1024).max(64 * 1024)
    }
}
