//! The directory (§6) as a sans-IO state machine: servers register (CLM_REGISTER_SERVER(_EX)) and
//! unregister, clients ask for the list (CLM_REQ_SERVER_LIST → reduced list, then full list, plus
//! CLM_SEND_EMPTY_MESSAGE to every public server for NAT hole punching), entries expire 33 min after
//! their last registration, and the registry can be saved to / loaded from Jamulus' directory file.
//!
//! Differences from Jamulus 3.9.1, all for robustness against forged source addresses:
//! * A new registration is answered at once, but the server is listed only after it echoed a cookie
//!   ping (CLM_PING_MS) — every Jamulus server does. Forged registrations are never listed.
//! * Every reply passes the amplification [`Limits`] (see [`guard`]).
//! * A standalone directory answers pings, version and client-list requests like an empty server,
//!   but creates no audio channels.
//!
//! Time comes in as `Instant`s; `poll_transmit` hands out datagrams; `take_snapshot` hands out the
//! persistence file's text when it changed (the shell writes it).

mod filter;
pub mod guard;
mod listing;
pub mod persistence;
mod registry;

pub use filter::{FilterError, ListFilter, Version};
pub use guard::{Limits, ListPolicy};
pub use listing::{is_private, OwnEntry};
pub use registry::{Registered, ServerListing};

use crate::outbox::Outbox;
use guard::Guard;
use listing::{punch_target, ListCache};
use registry::{Pending, Registry, Upsert};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};
use tutti_proto::frame::MAX_DATAGRAM;
use tutti_proto::message::{OsType, RegistrationResult, ServerInfo, VersionAndOs};
use tutti_proto::{Frame, Message, JAMULUS_VERSION};

/// Entries not refreshed for this long are removed.
pub const EXPIRY: Duration = Duration::from_secs(33 * 60);
/// How often expired entries are looked for.
pub const EXPIRY_CHECK: Duration = Duration::from_secs(60);
/// NAT keep-alive (CLM_EMPTY_MESSAGE) to every listed server.
pub const KEEPALIVE: Duration = Duration::from_secs(59);
/// Jamulus' list size: 150 entries including the directory itself.
pub const JAMULUS_MAX_SERVERS: usize = 150;
/// Cookie pings to a new registration, one per second, before it is given up.
const VERIFY_PINGS: u8 = 3;
const VERIFY_INTERVAL: Duration = Duration::from_secs(1);
/// Size of a CLM_PING_MS datagram.
const PING_BYTES: usize = 13;

/// What a directory is told at start.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// Entry 0 of every list.
    pub own: OwnEntry,
    /// List entries at most, the directory's own included (Jamulus: 150).
    pub max_servers: usize,
    /// `--listfilter`.
    pub filter: ListFilter,
    pub limits: Limits,
    /// The directory's public IPv4 (`--serverpublicip`), for hole punching towards private clients.
    pub public_ip: Option<Ipv4Addr>,
    /// Key of the cookies; the shell draws it at random.
    pub secret: u64,
    /// Registrations waiting for their cookie echo, at most.
    pub max_pending: usize,
    /// List a registration only after its cookie echo (true; false = trust the source address).
    pub verify_registrations: bool,
    /// The persistence file's text is handed out at most this often.
    pub save_interval: Duration,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            own: OwnEntry { name: String::new(), city: String::new(), country: 0, max_clients: 10 },
            max_servers: JAMULUS_MAX_SERVERS,
            filter: ListFilter::default(),
            limits: Limits::default(),
            public_ip: None,
            secret: 0,
            max_pending: 1024,
            verify_registrations: true,
            save_interval: Duration::from_secs(2),
        }
    }
}

/// Why the directory did not use (all of) a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectoryDrop {
    Oversized,
    /// Not a protocol frame (audio, garbage, bad CRC).
    NotProtocol,
    InvalidMessage,
    /// A message a directory does not handle (connection messages, client-side messages).
    NotForDirectory,
    /// Directories speak IPv4 only.
    Ipv6Source,
    /// A reply over the source's amplification budget.
    RateLimited,
    /// A pending registration pushed out by newer ones.
    PendingEvicted,
    /// A registration whose cookie was never echoed.
    Unverified,
}

impl DirectoryDrop {
    pub const ALL: [DirectoryDrop; 8] = [
        DirectoryDrop::Oversized,
        DirectoryDrop::NotProtocol,
        DirectoryDrop::InvalidMessage,
        DirectoryDrop::NotForDirectory,
        DirectoryDrop::Ipv6Source,
        DirectoryDrop::RateLimited,
        DirectoryDrop::PendingEvicted,
        DirectoryDrop::Unverified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryDrop::Oversized => "oversized",
            DirectoryDrop::NotProtocol => "not_protocol",
            DirectoryDrop::InvalidMessage => "invalid_message",
            DirectoryDrop::NotForDirectory => "not_for_directory",
            DirectoryDrop::Ipv6Source => "ipv6_source",
            DirectoryDrop::RateLimited => "rate_limited",
            DirectoryDrop::PendingEvicted => "pending_evicted",
            DirectoryDrop::Unverified => "unverified",
        }
    }
}

/// Counters since start. No addresses, no names.
#[derive(Debug, Clone, Default)]
pub struct DirectoryStats {
    pub datagrams_in: u64,
    pub bytes_in: u64,
    pub datagrams_out: u64,
    pub bytes_out: u64,
    pub lists_sent: u64,
    pub cookies_sent: u64,
    pub proofs: u64,
    pub registrations_refused: u64,
    dropped: [u64; DirectoryDrop::ALL.len()],
}

impl DirectoryStats {
    pub fn dropped(&self, reason: DirectoryDrop) -> u64 {
        self.dropped[reason as usize]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    fn drop(&mut self, reason: DirectoryDrop) {
        self.dropped[reason as usize] += 1;
    }
}

/// Changes of the list, for the operator's log. No addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryEvent {
    Listed { servers: usize },
    Unlisted { servers: usize },
    Expired { removed: usize, servers: usize },
    Refused(RegistrationResult),
}

/// The directory state machine.
pub struct Directory {
    config: DirectoryConfig,
    registry: Registry,
    cache: ListCache,
    guard: Guard,
    outbox: Outbox,
    events: VecDeque<DirectoryEvent>,
    stats: DirectoryStats,
    next_expiry: Instant,
    next_keepalive: Instant,
    saved_generation: u64,
    last_save: Option<Instant>,
}

impl Directory {
    pub fn new(mut config: DirectoryConfig, now: Instant) -> Self {
        config.max_servers = config.max_servers.max(1);
        let guard = Guard::new(config.limits.clone(), config.secret, now);
        Directory {
            config,
            registry: Registry::default(),
            cache: ListCache::default(),
            guard,
            outbox: Outbox::default(),
            events: VecDeque::new(),
            stats: DirectoryStats::default(),
            next_expiry: now + EXPIRY_CHECK,
            next_keepalive: now + KEEPALIVE,
            saved_generation: 0,
            last_save: None,
        }
    }

    pub fn config(&self) -> &DirectoryConfig {
        &self.config
    }

    pub fn stats(&self) -> &DirectoryStats {
        &self.stats
    }

    /// The listed servers in list order (without the directory's own entry).
    pub fn servers(&self) -> impl Iterator<Item = &Registered> {
        self.registry.iter()
    }

    pub fn server_count(&self) -> usize {
        self.registry.len()
    }

    /// Registrations waiting for their cookie echo.
    pub fn pending_count(&self) -> usize {
        self.registry.pending_len()
    }

    /// Source IPs the amplification guard tracks.
    pub fn tracked_sources(&self) -> usize {
        self.guard.tracked_sources()
    }

    /// Whether the amplification guard holds counters for `ip` (pruned each minute: a list reader
    /// goes after two idle minutes, a source that proved its address when its proof expires).
    pub fn tracks_source(&self, ip: std::net::IpAddr) -> bool {
        self.guard.tracks(ip)
    }

    /// Changes entry 0's max clients (a server that is its own directory: its channel count).
    pub fn set_own(&mut self, own: OwnEntry) {
        self.config.own = own;
        self.cache = ListCache::default();
    }

    // ----------------------------------------------------------------------------------------------
    // Input

    /// Takes one datagram received by a standalone directory.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        if bytes.len() > MAX_DATAGRAM {
            self.stats.drop(DirectoryDrop::Oversized);
            return;
        }
        let Some(frame) = Frame::parse(bytes) else {
            self.stats.drop(DirectoryDrop::NotProtocol);
            return;
        };
        if !frame.is_connection_less() {
            self.stats.drop(DirectoryDrop::NotForDirectory);
            return;
        }
        let message = match Message::decode(frame.id, frame.data) {
            Ok(m) => m,
            Err(_) => {
                self.stats.drop(DirectoryDrop::InvalidMessage);
                return;
            }
        };
        self.guard.on_request(now, from.ip(), bytes.len());
        if self.wants(now, from, &message) {
            self.dispatch(now, from, message);
        } else {
            self.answer_as_empty_server(now, from, message);
        }
    }

    /// For a server that is also a directory: takes a decoded connection-less message if it is one
    /// for the directory (registration, unregistration, list request, cookie echo) and returns true;
    /// otherwise returns false and the server handles it. `wire_len` is the datagram's size.
    pub fn handle_message(&mut self, now: Instant, from: SocketAddr, message: &Message, wire_len: usize) -> bool {
        if !self.wants(now, from, message) {
            return false;
        }
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += wire_len as u64;
        self.guard.on_request(now, from.ip(), wire_len);
        self.dispatch(now, from, message.clone());
        true
    }

    fn wants(&self, now: Instant, from: SocketAddr, message: &Message) -> bool {
        match message {
            Message::ClmRegisterServer(_)
            | Message::ClmRegisterServerEx { .. }
            | Message::ClmUnregisterServer
            | Message::ClmReqServerList => true,
            Message::ClmPingMs(value) => self.guard.is_cookie(now, from, *value),
            _ => false,
        }
    }

    fn dispatch(&mut self, now: Instant, from: SocketAddr, message: Message) {
        let Some(source) = ipv4(from) else {
            self.stats.drop(DirectoryDrop::Ipv6Source);
            return;
        };
        match message {
            Message::ClmRegisterServer(info) => self.register(now, source, info, None),
            Message::ClmRegisterServerEx { info, version, .. } => self.register(now, source, info, Some(version)),
            Message::ClmUnregisterServer => {
                let removed = self.registry.remove(source);
                if self.registry.take_pending(source).is_some() || removed {
                    self.events.push_back(DirectoryEvent::Unlisted { servers: self.registry.len() });
                }
            }
            Message::ClmReqServerList => self.send_list(now, source),
            Message::ClmPingMs(value) => {
                if self.guard.check_echo(now, from, value) {
                    self.stats.proofs += 1;
                    if let Some(pending) = self.registry.take_pending(source) {
                        if self.registry.len() + 1 < self.config.max_servers {
                            self.registry.upsert(now, source, pending.listing);
                            self.events.push_back(DirectoryEvent::Listed { servers: self.registry.len() });
                        }
                    }
                }
            }
            _ => self.stats.drop(DirectoryDrop::NotForDirectory),
        }
    }

    fn register(&mut self, now: Instant, source: SocketAddrV4, info: ServerInfo, version: Option<String>) {
        let filter = &self.config.filter;
        let refusal = if !filter.allows_version(version.as_deref()) {
            Some(RegistrationResult::VersionTooOld)
        } else if !filter.allows_source(*source.ip()) {
            Some(RegistrationResult::RequirementsNotFulfilled)
        } else if !self.registry.contains(source) && self.registry.len() + 1 >= self.config.max_servers {
            Some(RegistrationResult::ListFull)
        } else {
            None
        };
        if let Some(result) = refusal {
            self.stats.registrations_refused += 1;
            self.events.push_back(DirectoryEvent::Refused(result));
            self.reply_small(now, source, &Message::ClmRegisterServerResp(result));
            return;
        }
        let internal_ip = info.internal_address.parse::<Ipv4Addr>().unwrap_or(Ipv4Addr::LOCALHOST);
        let listing = ServerListing {
            name: info.name,
            city: info.city,
            country: info.country,
            max_clients: info.max_clients,
            permanent: info.permanent,
            internal: SocketAddrV4::new(internal_ip, info.port),
            version: version.unwrap_or_default(),
        };
        self.reply_small(now, source, &Message::ClmRegisterServerResp(RegistrationResult::Registered));
        if self.registry.contains(source) || !self.config.verify_registrations {
            if self.registry.upsert(now, source, listing) == Upsert::Added {
                self.events.push_back(DirectoryEvent::Listed { servers: self.registry.len() });
            }
            return;
        }
        let pending = Pending { listing, pings_sent: 0, next_ping: now };
        if self.registry.add_pending(source, pending, self.config.max_pending) {
            self.stats.drop(DirectoryDrop::PendingEvicted);
        }
        self.ping_pending(now);
    }

    fn send_list(&mut self, now: Instant, client: SocketAddrV4) {
        let ip = IpAddr::V4(*client.ip());
        let lists = self.cache.lists(&self.config.own, &self.registry, *client.ip());
        if !self.guard.is_proven(now, ip) {
            self.send_cookie(now, SocketAddr::V4(client));
        }
        match self.guard.allow_list(now, ip, lists.bytes) {
            Some(_) => {
                self.stats.lists_sent += 1;
                for datagram in &lists.datagrams {
                    self.outbox.push(SocketAddr::V4(client), datagram);
                }
                self.punch_holes(client);
            }
            None => self.stats.drop(DirectoryDrop::RateLimited),
        }
    }

    /// Asks every public listed server to send an empty message to the client (§6.4 step 3).
    fn punch_holes(&mut self, client: SocketAddrV4) {
        let target = punch_target(client, self.config.public_ip);
        let message = Message::ClmSendEmptyMessage { address: *target.ip(), port: target.port() }.to_datagram(0);
        let servers: Vec<SocketAddrV4> =
            self.registry.iter().map(|s| s.address).filter(|a| !is_private(*a.ip())).collect();
        for server in servers {
            self.outbox.push(SocketAddr::V4(server), &message);
        }
    }

    fn send_cookie(&mut self, now: Instant, to: SocketAddr) -> bool {
        if !self.guard.allow_small(now, to.ip(), PING_BYTES) {
            return false;
        }
        let cookie = self.guard.cookie(now, to);
        self.outbox.push(to, &Message::ClmPingMs(cookie).to_datagram(0));
        self.stats.cookies_sent += 1;
        true
    }

    /// Replies like a Jamulus server with no clients; everything else is dropped.
    fn answer_as_empty_server(&mut self, now: Instant, from: SocketAddr, message: Message) {
        let reply = match message {
            Message::ClmPingMs(time) => Message::ClmPingMs(time),
            Message::ClmPingMsWithNumClients { time, .. } => Message::ClmPingMsWithNumClients { time, clients: 0 },
            Message::ClmReqVersionAndOs => {
                Message::ClmVersionAndOs(VersionAndOs { os: OsType::Linux, version: JAMULUS_VERSION.to_string() })
            }
            Message::ClmReqConnClientsList => Message::ClmConnClientsList(Vec::new()),
            Message::ClmEmptyMessage => return,
            _ => {
                self.stats.drop(DirectoryDrop::NotForDirectory);
                return;
            }
        };
        match ipv4(from) {
            Some(to) => self.reply_small(now, to, &reply),
            None => self.stats.drop(DirectoryDrop::Ipv6Source),
        }
    }

    fn reply_small(&mut self, now: Instant, to: SocketAddrV4, message: &Message) {
        let datagram = message.to_datagram(0);
        if self.guard.allow_small(now, IpAddr::V4(*to.ip()), datagram.len()) {
            self.outbox.push(SocketAddr::V4(to), &datagram);
        } else {
            self.stats.drop(DirectoryDrop::RateLimited);
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Timers

    /// Expiry, keep-alives and cookie pings to pending registrations, whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_expiry {
            self.next_expiry = now + EXPIRY_CHECK;
            if let Some(deadline) = now.checked_sub(EXPIRY) {
                let removed = self.registry.expire(deadline);
                if removed > 0 {
                    self.events.push_back(DirectoryEvent::Expired { removed, servers: self.registry.len() });
                }
            }
            self.guard.prune(now);
        }
        if now >= self.next_keepalive {
            self.next_keepalive = now + KEEPALIVE;
            let keepalive = Message::ClmEmptyMessage.to_datagram(0);
            let servers: Vec<SocketAddrV4> = self.registry.iter().map(|s| s.address).collect();
            for server in servers {
                self.outbox.push(SocketAddr::V4(server), &keepalive);
            }
        }
        self.ping_pending(now);
    }

    fn ping_pending(&mut self, now: Instant) {
        let (due, dropped) = self.registry.due_pings(now, VERIFY_PINGS, VERIFY_INTERVAL);
        for address in due {
            self.send_cookie(now, SocketAddr::V4(address));
        }
        for _ in 0..dropped {
            self.stats.drop(DirectoryDrop::Unverified);
        }
    }

    /// When `handle_timeout` must run next.
    pub fn poll_timeout(&self) -> Instant {
        let mut next = self.next_expiry.min(self.next_keepalive);
        if let Some(ping) = self.registry.next_ping() {
            next = next.min(ping);
        }
        if self.saved_generation != self.registry.generation {
            if let Some(last) = self.last_save {
                next = next.min(last + self.config.save_interval);
            }
        }
        next
    }

    // ----------------------------------------------------------------------------------------------
    // Output

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, &[u8])> {
        let next = self.outbox.pop();
        if let Some((_, bytes)) = &next {
            self.stats.datagrams_out += 1;
            self.stats.bytes_out += bytes.len() as u64;
        }
        next
    }

    pub fn poll_event(&mut self) -> Option<DirectoryEvent> {
        self.events.pop_front()
    }

    // ----------------------------------------------------------------------------------------------
    // Persistence

    /// Loads the persistence file's text (entries get a fresh lifetime). Returns (loaded, skipped).
    pub fn load(&mut self, now: Instant, text: &str) -> (usize, usize) {
        let room = self.config.max_servers.saturating_sub(1 + self.registry.len());
        let loaded = persistence::parse(text, room);
        let count = loaded.servers.len();
        for (address, listing) in loaded.servers {
            self.registry.upsert(now, address, listing);
        }
        self.saved_generation = self.registry.generation;
        (count, loaded.skipped)
    }

    /// The persistence file's text if the list changed since the last one and `save_interval` has
    /// passed since then.
    pub fn take_snapshot(&mut self, now: Instant) -> Option<String> {
        if self.saved_generation == self.registry.generation {
            return None;
        }
        if self.last_save.is_some_and(|last| now.duration_since(last) < self.config.save_interval) {
            return None;
        }
        self.saved_generation = self.registry.generation;
        self.last_save = Some(now);
        Some(self.snapshot())
    }

    /// The persistence file's text now.
    pub fn snapshot(&self) -> String {
        persistence::format(self.registry.iter().collect::<Vec<_>>().into_iter())
    }
}

/// The IPv4 address of `from` (also for IPv4-mapped IPv6), or `None`.
fn ipv4(from: SocketAddr) -> Option<SocketAddrV4> {
    match from {
        SocketAddr::V4(v4) => Some(v4),
        SocketAddr::V6(v6) => v6.ip().to_ipv4_mapped().map(|ip| SocketAddrV4::new(ip, v6.port())),
    }
}
