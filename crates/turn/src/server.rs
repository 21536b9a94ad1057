//! The TURN server's state machine (RFC 8656, UDP relays): datagrams and stream frames from clients and
//! peers in, with the current time; transmits and relay-socket events out. It owns every allocation and the
//! authentication (coturn's REST scheme over the long-term credential mechanism) and opens no socket.

use crate::allocation::{Allocation, BindError};
pub use crate::allocation::{ClientKey, Transport};
use crate::credentials::{check_rest_username, long_term_key, rest_password, CredentialError};
use crate::policy::{self, PeerPolicy};
pub use crate::stats::{Refusal, Stats};
use crate::stun::{self, Class, Message, Writer};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tracing::debug;

mod requests;

/// How often expired allocations are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What the server needs to know; defaults as coturn's.
#[derive(Debug, Clone)]
pub struct Config {
    pub realm: String,
    /// Shared secrets of the REST scheme (any of them may have signed a username).
    pub secrets: Vec<String>,
    /// The addresses relays are opened on (at most one per family).
    pub relay_ips: Vec<IpAddr>,
    pub min_port: u16,
    pub max_port: u16,
    /// Allocations per user at once (0: no limit); the user is the REST id, else the username.
    pub user_quota: u32,
    /// Allocations at once (0: no limit).
    pub total_quota: u32,
    /// Bytes per second per allocation and direction (0: no limit).
    pub max_bps: u64,
    pub policy: PeerPolicy,
    pub default_lifetime: Duration,
    pub max_lifetime: Duration,
    pub nonce_lifetime: Duration,
    /// Key of the stateless nonces (random per process).
    pub nonce_key: [u8; 20],
}

impl Config {
    pub fn new(realm: &str, secret: &str, relay_ip: IpAddr) -> Config {
        Config {
            realm: realm.into(),
            secrets: vec![secret.into()],
            relay_ips: vec![relay_ip],
            min_port: 49152,
            max_port: 65535,
            user_quota: 0,
            total_quota: 0,
            max_bps: 0,
            policy: PeerPolicy::default(),
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            nonce_lifetime: Duration::from_secs(600),
            nonce_key: [0; 20],
        }
    }
}

/// The index of an allocation and of its relay socket in the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelayId(pub u32);

/// Where a transmit leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The listening socket (or TCP connection) of this client.
    Client(ClientKey),
    /// The relay socket of an allocation.
    Relay(RelayId),
}

#[derive(Debug)]
pub struct Transmit {
    pub via: Via,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What the shell must do besides sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Bind a UDP socket on `addr` and answer with [`Server::relay_opened`].
    OpenRelay { relay: RelayId, addr: SocketAddr },
    /// Close the relay socket.
    CloseRelay { relay: RelayId },
}

struct Pending {
    alloc: Allocation,
    lifetime: Duration,
    even: bool,
    /// EVEN-PORT with the R bit: keep the next port for a later Allocate with the token.
    reserve: bool,
    /// A port reserved earlier, from a RESERVATION-TOKEN.
    reserved_port: Option<u16>,
    tries: u32,
    fingerprint: bool,
}

/// A TURN server without sockets or clock.
pub struct Server {
    config: Config,
    anchor: (Instant, u64),
    allocations: Vec<Option<Allocation>>,
    free: Vec<u32>,
    by_client: HashMap<ClientKey, RelayId>,
    /// The relay addresses of the live allocations (IPv4-mapped addresses as IPv4), the peers that another
    /// allocation of this server may reach on its own addresses.
    by_relay: HashSet<SocketAddr>,
    pending: HashMap<RelayId, Pending>,
    per_user: HashMap<String, u32>,
    next_port: u32,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    spare: Vec<Vec<u8>>,
    stats: Stats,
    next_sweep: Option<Instant>,
    /// RESERVATION-TOKEN → the reserved relay address and until when.
    reservations: HashMap<[u8; 8], (SocketAddr, Instant)>,
    /// The time of the input being handled.
    now: Instant,
}

impl Server {
    /// `now` and `unix_now` (seconds since 1970) say the same moment: REST expiry times are Unix times.
    pub fn new(mut config: Config, now: Instant, unix_now: u64) -> Server {
        for ip in config.relay_ips.clone() {
            if !config.policy.own.contains(&ip) {
                config.policy.own.push(ip);
            }
        }
        let next_port = u32::from(config.min_port);
        Server {
            config,
            anchor: (now, unix_now),
            allocations: Vec::new(),
            free: Vec::new(),
            by_client: HashMap::new(),
            by_relay: HashSet::new(),
            pending: HashMap::new(),
            per_user: HashMap::new(),
            next_port,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            spare: Vec::new(),
            stats: Stats::default(),
            next_sweep: None,
            reservations: HashMap::new(),
            now,
        }
    }

    pub fn stats(&self) -> Stats {
        Stats { allocations: self.by_client.len() as u64, ..self.stats }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn unix(&self, now: Instant) -> u64 {
        self.anchor.1 + now.saturating_duration_since(self.anchor.0).as_secs()
    }

    fn refuse(&mut self, reason: Refusal) {
        self.stats.refused[reason as usize] += 1;
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Server::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Gives a sent transmit's buffer back for reuse.
    pub fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.spare.len() < 256 {
            bytes.clear();
            self.spare.push(bytes);
        }
    }

    fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_else(|| Vec::with_capacity(1500))
    }

    /// Expires allocations, permissions and channels.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.next_sweep.is_some_and(|t| t > now) {
            return;
        }
        let mut expired = Vec::new();
        for (i, slot) in self.allocations.iter_mut().enumerate() {
            if let Some(a) = slot {
                if a.expires <= now {
                    expired.push(RelayId(i as u32));
                } else {
                    a.sweep(now);
                }
            }
        }
        self.reservations.retain(|_, (_, expires)| *expires > now);
        for relay in expired {
            debug!(relay = relay.0, "allocation expired");
            self.remove(relay);
        }
        self.next_sweep = (!self.by_client.is_empty() || !self.pending.is_empty()).then(|| now + SWEEP_EVERY);
    }

    fn remove(&mut self, relay: RelayId) {
        let Some(a) = self.allocations.get_mut(relay.0 as usize).and_then(Option::take) else { return };
        self.by_client.remove(&a.client);
        self.by_relay.remove(&policy::canonical_addr(a.relay));
        if let Some(n) = self.per_user.get_mut(&a.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_user.remove(&a.user);
            }
        }
        self.free.push(relay.0);
        self.events.push_back(Event::CloseRelay { relay });
    }

    /// A client went away (its TCP connection closed): its allocation goes too.
    pub fn client_closed(&mut self, client: ClientKey) {
        if let Some(relay) = self.by_client.get(&client).copied() {
            self.remove(relay);
        }
    }

    /// A datagram (UDP) or one whole frame (TCP) from a client.
    pub fn handle_client(&mut self, now: Instant, from: ClientKey, bytes: &[u8]) {
        self.now = now;
        if stun::is_channel_data(bytes) {
            return self.client_channel_data(now, from, bytes);
        }
        let message = match Message::parse(bytes) {
            Ok(m) => m,
            Err(_) => return self.refuse(Refusal::Malformed),
        };
        match (message.class, message.method) {
            (Class::Request, method) => {
                self.stats.requests += 1;
                self.request(now, from, &message, method);
            }
            (Class::Indication, stun::SEND) => self.send_indication(now, from, &message),
            _ => self.refuse(Refusal::Malformed),
        }
        if self.next_sweep.is_none() && (!self.by_client.is_empty() || !self.pending.is_empty()) {
            self.next_sweep = Some(now + SWEEP_EVERY);
        }
    }

    fn client_channel_data(&mut self, now: Instant, from: ClientKey, bytes: &[u8]) {
        let Ok((number, data)) = stun::parse_channel_data(bytes) else { return self.refuse(Refusal::Malformed) };
        let Some(relay) = self.by_client.get(&from).copied() else { return self.refuse(Refusal::NoAllocation) };
        let Some(a) = self.allocations.get_mut(relay.0 as usize).and_then(Option::as_mut) else { return };
        let Some(peer) = a.channel_peer(now, number) else { return self.refuse(Refusal::NoPermission) };
        if !a.to_peer.take(now, self.config.max_bps, data.len()) {
            return self.refuse(Refusal::RateLimited);
        }
        self.relay_to_peer(relay, peer, data);
    }

    /// Whether `peer` may be reached: the peer policy, or the relay address of another live allocation of this
    /// server, which two clients that both relay (a "hide my IP" call through one server) need. Every other
    /// port of the host stays refused, those of the relay range with no allocation on them included, so no
    /// service of the host is reachable (not even one that happens to listen on a port of the range).
    fn peer_allowed(&self, peer: SocketAddr) -> bool {
        let policy = &self.config.policy;
        if policy.permits(peer.ip()) {
            return true;
        }
        self.by_relay.contains(&policy::canonical_addr(peer)) && !policy.denied.iter().any(|r| r.contains(peer.ip()))
    }

    fn send_indication(&mut self, now: Instant, from: ClientKey, message: &Message) {
        let Some(relay) = self.by_client.get(&from).copied() else { return self.refuse(Refusal::NoAllocation) };
        let peer = message.get(stun::XOR_PEER_ADDRESS).and_then(|v| message.xor_address(v, 0).ok());
        let (Some(peer), Some(data)) = (peer, message.get(stun::DATA_ATTR)) else {
            return self.refuse(Refusal::Malformed);
        };
        // a permission for one of this server's relay addresses is not one for its other ports
        if !self.peer_allowed(peer) {
            return self.refuse(Refusal::ForbiddenPeer);
        }
        let Some(a) = self.allocations.get_mut(relay.0 as usize).and_then(Option::as_mut) else { return };
        if !a.permitted(now, peer.ip()) {
            return self.refuse(Refusal::NoPermission);
        }
        if !a.to_peer.take(now, self.config.max_bps, data.len()) {
            return self.refuse(Refusal::RateLimited);
        }
        self.relay_to_peer(relay, peer, data);
    }

    /// Queues `data` for a peer, out of the allocation's relay socket (permission and rate already checked).
    fn relay_to_peer(&mut self, relay: RelayId, peer: SocketAddr, data: &[u8]) {
        let mut out = self.buffer();
        out.extend_from_slice(data);
        self.stats.packets_to_peers += 1;
        self.stats.bytes_to_peers += data.len() as u64;
        self.transmits.push_back(Transmit { via: Via::Relay(relay), to: peer, bytes: out });
    }

    /// A datagram from a peer on a relay socket.
    pub fn handle_peer(&mut self, now: Instant, relay: RelayId, from: SocketAddr, bytes: &[u8]) {
        let Some(a) = self.allocations.get_mut(relay.0 as usize).and_then(Option::as_mut) else { return };
        if !a.permitted(now, from.ip()) {
            return self.refuse(Refusal::NoPermission);
        }
        if !a.to_client.take(now, self.config.max_bps, bytes.len()) {
            return self.refuse(Refusal::RateLimited);
        }
        let client = a.client;
        let channel = a.peer_channel(now, from);
        let out = match channel {
            Some(number) => {
                let mut out = self.buffer();
                stun::write_channel_data(&mut out, number, bytes, client.transport == Transport::Tcp);
                out
            }
            None => Writer::new(stun::DATA, Class::Indication, indication_txid(self.stats.packets_to_clients))
                .xor_address(stun::XOR_PEER_ADDRESS, from)
                .attr(stun::DATA_ATTR, bytes)
                .finish(),
        };
        self.stats.packets_to_clients += 1;
        self.stats.bytes_to_clients += bytes.len() as u64;
        self.transmits.push_back(Transmit { via: Via::Client(client), to: client.client, bytes: out });
    }
}

/// Transaction IDs of Data indications: unique per server (clients do not answer indications).
fn indication_txid(n: u64) -> [u8; 12] {
    let mut txid = [0x5A; 12];
    txid[..8].copy_from_slice(&n.to_be_bytes());
    txid
}
