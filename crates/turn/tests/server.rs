//! The TURN state machine driven with bytes and time only: authentication answers, allocation lifetime,
//! permission expiry, channel binding rules, quotas, bandwidth caps, peer refusals and malformed input.

use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tutti_turn::credentials::{long_term_key, rest_credentials};
use tutti_turn::stun::{self, Class, Message, Writer};
use tutti_turn::{ClientKey, Config, Event, Refusal, RelayId, Server, Transport, Via};

const UNIX: u64 = 1_800_000_000;
const SECRET: &str = "north";
const REALM: &str = "example.org";

fn config() -> Config {
    let mut config = Config::new(REALM, SECRET, "203.0.113.1".parse().unwrap());
    config.nonce_key = [9; 20];
    config.nonce_lifetime = Duration::from_secs(3600);
    config
}

fn key(port: u16) -> ClientKey {
    ClientKey {
        transport: Transport::Udp,
        client: SocketAddr::from(([198, 51, 100, 7], port)),
        server: "203.0.113.1:3478".parse().unwrap(),
    }
}

struct Client {
    key: ClientKey,
    username: String,
    password: String,
    nonce: String,
    txn: u8,
}

impl Client {
    fn new(port: u16, id: &str, ttl: u64) -> Client {
        let (username, password) = rest_credentials(SECRET, Duration::from_secs(ttl), id, UNIX);
        Client { key: key(port), username, password, nonce: String::new(), txn: 0 }
    }

    fn txid(&mut self) -> [u8; 12] {
        self.txn += 1;
        [self.txn; 12]
    }

    /// A signed request with USERNAME, REALM and the last NONCE.
    fn request(&mut self, method: u16, build: impl FnOnce(Writer) -> Writer) -> Vec<u8> {
        let txid = self.txid();
        let key = long_term_key(&self.username, REALM, &self.password);
        build(Writer::new(method, Class::Request, txid))
            .attr(stun::USERNAME, self.username.as_bytes())
            .attr(stun::REALM, REALM.as_bytes())
            .attr(stun::NONCE, self.nonce.as_bytes())
            .integrity(&key)
            .finish_with_fingerprint()
    }

    /// Sends `bytes` and returns the error code of the answer (0 for success), learning the nonce.
    fn ask(&mut self, server: &mut Server, now: Instant, bytes: &[u8]) -> u16 {
        server.handle_client(now, self.key, bytes);
        open_relays(server, now);
        let answer = to_client(server).pop().expect("an answer");
        let m = Message::parse(&answer).expect("a STUN answer");
        if let Ok(Some(nonce)) = m.text(stun::NONCE) {
            self.nonce = nonce.to_string();
        }
        match m.class {
            Class::Success => 0,
            _ => m.get(stun::ERROR_CODE).and_then(stun::error_code).unwrap_or(1),
        }
    }

    /// Allocate with the 401 round trip first; returns the final code.
    fn allocate(&mut self, server: &mut Server, now: Instant) -> u16 {
        let first =
            Writer::new(stun::ALLOCATE, Class::Request, self.txid()).attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        assert_eq!(self.ask(server, now, &first.finish()), 401);
        let request = self.request(stun::ALLOCATE, |w| w.attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]));
        self.ask(server, now, &request)
    }

    fn permission(&mut self, server: &mut Server, now: Instant, peer: SocketAddr) -> u16 {
        let request = self.request(stun::CREATE_PERMISSION, |w| w.xor_address(stun::XOR_PEER_ADDRESS, peer));
        self.ask(server, now, &request)
    }

    fn bind(&mut self, server: &mut Server, now: Instant, channel: u16, peer: SocketAddr) -> u16 {
        let request = self.request(stun::CHANNEL_BIND, |w| {
            w.attr(stun::CHANNEL_NUMBER, &[(channel >> 8) as u8, channel as u8, 0, 0])
                .xor_address(stun::XOR_PEER_ADDRESS, peer)
        });
        self.ask(server, now, &request)
    }
}

/// Opens every relay the server asks for (port numbers as asked).
fn open_relays(server: &mut Server, now: Instant) {
    while let Some(event) = server.poll_event() {
        if let Event::OpenRelay { relay, .. } = event {
            server.relay_opened(now, relay, true);
        }
    }
}

fn to_client(server: &mut Server) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| server.poll_transmit()).filter(|t| matches!(t.via, Via::Client(_))).map(|t| t.bytes).collect()
}

fn to_peers(server: &mut Server) -> Vec<(SocketAddr, Vec<u8>)> {
    std::iter::from_fn(|| server.poll_transmit())
        .filter(|t| matches!(t.via, Via::Relay(_)))
        .map(|t| (t.to, t.bytes))
        .collect()
}

fn peer() -> SocketAddr {
    "192.0.2.50:4000".parse().unwrap()
}

#[test]
fn allocate_answers_401_then_relays_and_retransmissions_get_the_same_answer() {
    let t0 = Instant::now();
    let mut server = Server::new(config(), t0, UNIX);
    let mut c = Client::new(5000, "alice", 3600);
    let first = Writer::new(stun::ALLOCATE, Class::Request, [1; 12]).attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    server.handle_client(t0, c.key, &first.finish());
    let answer = to_client(&mut server).pop().unwrap();
    let m = Message::parse(&answer).unwrap();
    assert_eq!(m.get(stun::ERROR_CODE).and_then(stun::error_code), Some(401));
    assert_eq!(m.text(stun::REALM).unwrap(), Some(REALM));
    c.nonce = m.text(stun::NONCE).unwrap().unwrap().to_string();
    let request =
        c.request(stun::ALLOCATE, |w| w.attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).u32(stun::LIFETIME, 1200));
    server.handle_client(t0, c.key, &request);
    let Some(Event::OpenRelay { relay, addr }) = server.poll_event() else { panic!("a relay to open") };
    assert_eq!(addr.ip(), "203.0.113.1".parse::<IpAddr>().unwrap());
    server.relay_opened(t0, relay, true);
    let answer = to_client(&mut server).pop().unwrap();
    let m = Message::parse(&answer).unwrap();
    assert_eq!(m.class, Class::Success);
    assert!(m.check_integrity(&long_term_key(&c.username, REALM, &c.password)));
    assert_eq!(m.xor_address(m.get(stun::XOR_RELAYED_ADDRESS).unwrap(), 0).unwrap(), addr);
    assert_eq!(m.xor_address(m.get(stun::XOR_MAPPED_ADDRESS).unwrap(), 0).unwrap(), c.key.client);
    assert_eq!(m.u32(stun::LIFETIME).unwrap(), Some(1200));
    server.handle_client(t0, c.key, &request);
    assert_eq!(to_client(&mut server).pop().unwrap(), answer, "a retransmission gets the same answer");
    let again = c.request(stun::ALLOCATE, |w| w.attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]));
    assert_eq!(c.ask(&mut server, t0, &again), 437);
    assert_eq!(server.stats().allocations, 1);
}

#[test]
fn wrong_expired_and_stale_credentials_are_refused_as_the_rfc_says() {
    let t0 = Instant::now();
    let mut config = config();
    config.nonce_lifetime = Duration::from_secs(100);
    let mut server = Server::new(config, t0, UNIX);
    let mut wrong = Client::new(5000, "alice", 3600);
    wrong.password = rest_credentials("south", Duration::from_secs(3600), "alice", UNIX).1;
    assert_eq!(wrong.allocate(&mut server, t0), 401);
    let mut expired = Client::new(5001, "bob", 0);
    assert_eq!(expired.allocate(&mut server, t0 + Duration::from_secs(1)), 401, "expired a second ago");
    let mut c = Client::new(5002, "carol", 3600);
    assert_eq!(c.allocate(&mut server, t0), 0);
    let later = t0 + Duration::from_secs(200);
    let refresh = c.request(stun::REFRESH, |w| w);
    assert_eq!(c.ask(&mut server, later, &refresh), 438, "the nonce went stale");
    let refresh = c.request(stun::REFRESH, |w| w);
    assert_eq!(c.ask(&mut server, later, &refresh), 0, "the new nonce works");
    let (username, password) = rest_credentials(SECRET, Duration::from_secs(3600), "mallory", UNIX);
    let mut other = Client { username, password, ..Client::new(5002, "", 1) };
    other.nonce = c.nonce.clone();
    let refresh = other.request(stun::REFRESH, |w| w);
    assert_eq!(other.ask(&mut server, later, &refresh), 441, "another user on the same 5-tuple");
    let unsigned = Writer::new(stun::REFRESH, Class::Request, [3; 12]).finish();
    assert_eq!(c.ask(&mut server, later, &unsigned), 401);
    assert_eq!(server.stats().refused(Refusal::WrongCredentials), 1);
}

#[test]
fn an_allocation_outlives_its_credentials_but_new_allocations_with_them_are_refused() {
    // as coturn: the REST expiry is checked when allocating; a call keeps its relay past the TTL
    let t0 = Instant::now();
    let mut server = Server::new(config(), t0, UNIX);
    let mut c = Client::new(5000, "alice", 60);
    assert_eq!(c.allocate(&mut server, t0), 0);
    let later = t0 + Duration::from_secs(300);
    assert_eq!(c.permission(&mut server, later, peer()), 0, "CreatePermission after the expiry");
    assert_eq!(c.bind(&mut server, later, 0x4000, peer()), 0, "ChannelBind after the expiry");
    let refresh = c.request(stun::REFRESH, |w| w.u32(stun::LIFETIME, 600));
    assert_eq!(c.ask(&mut server, later, &refresh), 0, "Refresh after the expiry");
    let mut again = Client::new(5001, "alice", 60);
    assert_eq!(again.allocate(&mut server, later), 401, "a new allocation with expired credentials");
    // and the allocation, once gone, cannot be made again with them
    let delete = c.request(stun::REFRESH, |w| w.u32(stun::LIFETIME, 0));
    assert_eq!(c.ask(&mut server, later, &delete), 0);
    assert_eq!(c.allocate(&mut server, later), 401);
}

#[test]
fn two_allocations_of_one_server_reach_each_other_but_not_its_other_ports() {
    // both sides of a "hide my IP" call relay through the same server: each peer is the other's relay
    let t0 = Instant::now();
    let mut server = Server::new(config(), t0, UNIX);
    let (mut a, mut b) = (Client::new(5000, "alice", 7200), Client::new(5001, "bob", 7200));
    assert_eq!(a.allocate(&mut server, t0), 0);
    assert_eq!(b.allocate(&mut server, t0), 0);
    let (relay_a, relay_b): (SocketAddr, SocketAddr) =
        ("203.0.113.1:49152".parse().unwrap(), "203.0.113.1:49153".parse().unwrap());
    assert_eq!(a.permission(&mut server, t0, relay_b), 0);
    assert_eq!(b.permission(&mut server, t0, relay_a), 0);
    assert_eq!(a.bind(&mut server, t0, 0x4000, relay_b), 0);
    let send = |to: SocketAddr| {
        Writer::new(stun::SEND, Class::Indication, [7; 12])
            .xor_address(stun::XOR_PEER_ADDRESS, to)
            .attr(stun::DATA_ATTR, &[1; 100])
            .finish()
    };
    server.handle_client(t0, a.key, &send(relay_b));
    assert_eq!(to_peers(&mut server), vec![(relay_b, vec![1; 100])], "A's relay sends to B's relay");
    server.handle_peer(t0, RelayId(1), relay_a, &[2; 100]);
    assert_eq!(to_client(&mut server).len(), 1, "B hears A");
    // the permission for the server's address does not open its other ports
    server.handle_client(t0, a.key, &send("203.0.113.1:22".parse().unwrap()));
    assert!(to_peers(&mut server).is_empty(), "no Send to the host's port 22");
    assert_eq!(server.stats().refused(Refusal::ForbiddenPeer), 1);
    assert_eq!(a.bind(&mut server, t0, 0x4001, "203.0.113.1:22".parse().unwrap()), 403);
    assert_eq!(a.permission(&mut server, t0, "203.0.113.1:3478".parse().unwrap()), 403, "not a relay port");
    // nor a port of the relay range with no allocation on it (another service of the host may listen there)
    let unallocated: SocketAddr = "203.0.113.1:49160".parse().unwrap();
    assert_eq!(a.permission(&mut server, t0, unallocated), 403, "a relay-range port with no allocation");
    server.handle_client(t0, a.key, &send(unallocated));
    assert!(to_peers(&mut server).is_empty(), "no Send to a relay-range port with no allocation");
    // and once B's allocation is gone, its address is an ordinary port of the host again
    let delete = b.request(stun::REFRESH, |w| w.u32(stun::LIFETIME, 0));
    assert_eq!(b.ask(&mut server, t0, &delete), 0);
    server.handle_client(t0, a.key, &send(relay_b));
    assert!(to_peers(&mut server).is_empty(), "no Send to the relay address of a deleted allocation");
    assert_eq!(a.bind(&mut server, t0, 0x4002, relay_b), 403);
}

#[test]
fn allocations_expire_refresh_extends_and_zero_deletes() {
    let t0 = Instant::now();
    let mut server = Server::new(config(), t0, UNIX);
    let mut c = Client::new(5000, "alice", 7200);
    assert_eq!(c.allocate(&mut server, t0), 0);
    server.handle_timeout(t0 + Duration::from_secs(599));
    assert_eq!(server.stats().allocations, 1);
    let t1 = t0 + Duration::from_secs(590);
    let refresh = c.request(stun::REFRESH, |w| w.u32(stun::LIFETIME, 300));
    assert_eq!(c.ask(&mut server, t1, &refresh), 0);
    server.handle_timeout(t1 + Duration::from_secs(299));
    assert_eq!(server.stats().allocations, 1);
    server.handle_timeout(t1 + Duration::from_secs(301));
    assert_eq!(server.stats().allocations, 0);
    assert!(matches!(server.poll_event(), Some(Event::CloseRelay { .. })));
    let t2 = t1 + Duration::from_secs(302);
    let refresh = c.request(stun::REFRESH, |w| w);
    assert_eq!(c.ask(&mut server, t2, &refresh), 437, "no allocation any more");
    assert_eq!(c.allocate(&mut server, t2), 0);
    let delete = c.request(stun::REFRESH, |w| w.u32(stun::LIFETIME, 0));
    assert_eq!(c.ask(&mut server, t2, &delete), 0);
    assert_eq!(server.stats().allocations, 0);
}

#[test]
fn permissions_let_peers_through_for_five_minutes() {
    let t0 = Instant::now();
    let mut server = Server::new(config(), t0, UNIX);
    let mut c = Client::new(5000, "alice", 7200);
    assert_eq!(c.allocate(&mut server, t0), 0);
    let relay = RelayId(0);
    server.handle_peer(t0, relay, peer(), b"early");
    assert!(to_client(&mut server).is_empty(), "no permission yet");
    assert_eq!(c.permission(&mut server, t0, peer()), 0);
    server.handle_peer(t0, relay, SocketAddr::new(peer().ip(), 9999), b"hello");
    let data = to_client(&mut server).pop().expect("a Data indication");
    let m = Message::parse(&data).unwrap();
    assert_eq!((m.method, m.class), (stun::DATA, Class::Indication));
    assert_eq!(m.get(stun::DATA_ATTR), Some(&b"hello"[..]));
    let send = Writer::new(stun::SEND, Class::Indication, [5; 12])
        .xor_address(stun::XOR_PEER_ADDRESS, peer())
        .attr(stun::DATA_ATTR, b"out")
        .finish();
    server.handle_client(t0, c.key, &send);
    assert_eq!(to_peers(&mut server), vec![(peer(), b"out".to_vec())]);
    let late = t0 + Duration::from_secs(300);
    server.handle_peer(late, relay, peer(), b"late");
    server.handle_client(late, c.key, &send);
    assert!(server.poll_transmit().is_none(), "the permission expired both ways");
    assert_eq!(server.stats().refused(Refusal::NoPermission), 3);
}

#[test]
fn channels_carry_channel_data_both_ways_and_follow_the_binding_rules() {
    let t0 = Instant::now();
    let mut server = Server::new(config(), t0, UNIX);
    let mut c = Client::new(5000, "alice", 7200);
    assert_eq!(c.allocate(&mut server, t0), 0);
    assert_eq!(c.bind(&mut server, t0, 0x3FFF, peer()), 400, "below the channel range");
    assert_eq!(c.bind(&mut server, t0, 0x8000, peer()), 400, "above the channel range");
    assert_eq!(c.bind(&mut server, t0, 0x4000, peer()), 0);
    assert_eq!(c.bind(&mut server, t0, 0x4000, "192.0.2.51:4000".parse().unwrap()), 400, "channel taken");
    assert_eq!(c.bind(&mut server, t0, 0x4001, peer()), 400, "peer taken");
    assert_eq!(c.bind(&mut server, t0, 0x4000, peer()), 0, "a refresh");
    let mut frame = Vec::new();
    stun::write_channel_data(&mut frame, 0x4000, &[7; 200], false);
    server.handle_client(t0, c.key, &frame);
    assert_eq!(to_peers(&mut server), vec![(peer(), vec![7; 200])]);
    stun::write_channel_data(&mut frame, 0x4002, &[7; 200], false);
    server.handle_client(t0, c.key, &frame);
    assert!(server.poll_transmit().is_none(), "an unbound channel");
    server.handle_peer(t0, RelayId(0), peer(), &[8; 200]);
    let back = to_client(&mut server).pop().unwrap();
    assert_eq!(stun::parse_channel_data(&back).unwrap(), (0x4000, &[8u8; 200][..]));
    let stats = server.stats();
    assert_eq!((stats.packets_to_peers, stats.packets_to_clients), (1, 1));
}

#[test]
fn internal_and_own_peers_are_refused_by_default() {
    let t0 = Instant::now();
    let mut server = Server::new(config(), t0, UNIX);
    let mut c = Client::new(5000, "alice", 7200);
    assert_eq!(c.allocate(&mut server, t0), 0);
    for refused in
        ["127.0.0.1:80", "10.0.0.1:22", "169.254.169.254:80", "192.168.1.1:53", "224.0.0.1:5", "203.0.113.1:80"]
    {
        let p: SocketAddr = refused.parse().unwrap();
        assert_eq!(c.permission(&mut server, t0, p), 403, "{refused}");
        assert_eq!(c.bind(&mut server, t0, 0x4000, p), 403, "{refused}");
    }
    assert_eq!(c.permission(&mut server, t0, "[2001:db8::1]:80".parse().unwrap()), 443, "wrong family");
    let mut config = config();
    config.policy.allow_loopback = true;
    let mut server = Server::new(config, t0, UNIX);
    let mut c = Client::new(5000, "alice", 7200);
    assert_eq!(c.allocate(&mut server, t0), 0);
    assert_eq!(c.permission(&mut server, t0, "127.0.0.1:80".parse().unwrap()), 0);
    assert_eq!(c.permission(&mut server, t0, "10.0.0.1:80".parse().unwrap()), 403);
}

#[test]
fn quotas_refuse_allocations_and_bandwidth_is_capped() {
    let t0 = Instant::now();
    let mut config = config();
    config.user_quota = 1;
    config.total_quota = 2;
    config.max_bps = 1000;
    let mut server = Server::new(config, t0, UNIX);
    assert_eq!(Client::new(5000, "alice", 7200).allocate(&mut server, t0), 0);
    assert_eq!(Client::new(5001, "alice", 3600).allocate(&mut server, t0), 486, "alice's second");
    let mut bob = Client::new(5002, "bob", 7200);
    assert_eq!(bob.allocate(&mut server, t0), 0);
    assert_eq!(Client::new(5003, "carol", 7200).allocate(&mut server, t0), 508, "the server is full");
    assert_eq!(bob.bind(&mut server, t0, 0x4000, peer()), 0);
    let mut frame = Vec::new();
    stun::write_channel_data(&mut frame, 0x4000, &[1; 200], false);
    for _ in 0..10 {
        server.handle_client(t0, bob.key, &frame);
    }
    assert_eq!(to_peers(&mut server).len(), 5, "1000 bytes a second");
    server.handle_client(t0 + Duration::from_millis(200), bob.key, &frame);
    assert_eq!(to_peers(&mut server).len(), 1, "refilled");
    assert_eq!(server.stats().refused(Refusal::RateLimited), 5);
}

#[test]
fn unknown_required_attributes_and_transports_are_refused() {
    let t0 = Instant::now();
    let mut server = Server::new(config(), t0, UNIX);
    let mut c = Client::new(5000, "alice", 7200);
    assert_eq!(c.allocate(&mut server, t0), 0);
    let odd = c.request(stun::REFRESH, |w| w.attr(0x7777, b"?"));
    assert_eq!(c.ask(&mut server, t0, &odd), 420);
    let mut d = Client::new(5001, "dave", 7200);
    assert_eq!(d.allocate(&mut server, t0), 0);
    let mut e = Client::new(5002, "erin", 7200);
    e.nonce = d.nonce.clone();
    let tcp = e.request(stun::ALLOCATE, |w| w.attr(stun::REQUESTED_TRANSPORT, &[6, 0, 0, 0]));
    assert_eq!(e.ask(&mut server, t0, &tcp), 442);
    let none = e.request(stun::ALLOCATE, |w| w);
    assert_eq!(e.ask(&mut server, t0, &none), 400);
    let v6 = e.request(stun::ALLOCATE, |w| {
        w.attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).attr(stun::REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0])
    });
    assert_eq!(e.ask(&mut server, t0, &v6), 440, "no IPv6 relay address");
}

#[test]
fn ipv6_relays_tcp_padding_and_even_port_reservations() {
    let t0 = Instant::now();
    let mut config = config();
    config.relay_ips.push("2001:db8::1".parse().unwrap());
    config.min_port = 50001;
    let mut server = Server::new(config, t0, UNIX);
    let mut c = Client::new(5000, "alice", 7200);
    c.key.transport = Transport::Tcp;
    assert_eq!(c.allocate(&mut server, t0), 0);
    let mut v6 = Client::new(5001, "bob", 7200);
    v6.nonce = c.nonce.clone();
    let request = v6.request(stun::ALLOCATE, |w| {
        w.attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).attr(stun::REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0])
    });
    server.handle_client(t0, v6.key, &request);
    let Some(Event::OpenRelay { addr, .. }) = server.poll_event() else { panic!("a relay to open") };
    assert_eq!(addr.ip(), "2001:db8::1".parse::<IpAddr>().unwrap());
    open_relays(&mut server, t0);
    while server.poll_transmit().is_some() {}
    // A TCP client's ChannelData is padded to a multiple of 4 bytes.
    assert_eq!(c.bind(&mut server, t0, 0x4000, peer()), 0);
    server.handle_peer(t0, RelayId(0), peer(), &[1, 2, 3, 4, 5]);
    let frame = to_client(&mut server).pop().unwrap();
    assert_eq!(frame.len(), 12);
    assert_eq!(stun::parse_channel_data(&frame).unwrap(), (0x4000, &[1u8, 2, 3, 4, 5][..]));
    // EVEN-PORT with the R bit: an even port, and a token for the next one.
    let mut even = Client::new(5002, "carol", 7200);
    even.nonce = c.nonce.clone();
    let request = even
        .request(stun::ALLOCATE, |w| w.attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).attr(stun::EVEN_PORT, &[0x80]));
    server.handle_client(t0, even.key, &request);
    let Some(Event::OpenRelay { relay, addr }) = server.poll_event() else { panic!("a relay to open") };
    assert_eq!(addr.port() % 2, 0);
    server.relay_opened(t0, relay, true);
    let answer = to_client(&mut server).pop().unwrap();
    let token = Message::parse(&answer).unwrap().get(stun::RESERVATION_TOKEN).unwrap().to_vec();
    let mut odd = Client::new(5003, "carol", 7200);
    odd.nonce = c.nonce.clone();
    let request = odd.request(stun::ALLOCATE, |w| {
        w.attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).attr(stun::RESERVATION_TOKEN, &token)
    });
    server.handle_client(t0, odd.key, &request);
    let Some(Event::OpenRelay { addr: next, .. }) = server.poll_event() else { panic!("a relay to open") };
    assert_eq!(next.port(), addr.port() + 1);
    let mut again = Client::new(5004, "carol", 7200);
    again.nonce = c.nonce.clone();
    let request = again.request(stun::ALLOCATE, |w| {
        w.attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).attr(stun::RESERVATION_TOKEN, &token)
    });
    assert_eq!(again.ask(&mut server, t0, &request), 508, "a token is good once");
}

fn signed_requests() -> Vec<Vec<u8>> {
    let mut c = Client::new(5000, "alice", 7200);
    vec![
        c.request(stun::ALLOCATE, |w| w.attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0])),
        c.request(stun::CHANNEL_BIND, |w| {
            w.attr(stun::CHANNEL_NUMBER, &[0x40, 0, 0, 0]).xor_address(stun::XOR_PEER_ADDRESS, peer())
        }),
        c.request(stun::CREATE_PERMISSION, |w| w.xor_address(stun::XOR_PEER_ADDRESS, peer())),
        c.request(stun::REFRESH, |w| w.u32(stun::LIFETIME, 60)),
    ]
}

proptest! {
    #[test]
    fn malformed_input_is_counted_and_dropped_never_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        pick in 0usize..4, at in any::<usize>(), flip in 1u8..=255, cut in any::<usize>(),
    ) {
        let t0 = Instant::now();
        let mut server = Server::new(config(), t0, UNIX);
        let mut c = Client::new(5000, "alice", 7200);
        prop_assert_eq!(c.allocate(&mut server, t0), 0);
        server.handle_client(t0, c.key, &bytes);
        server.handle_peer(t0, RelayId(0), peer(), &bytes);
        server.handle_peer(t0, RelayId(7), peer(), &bytes);
        let mut mutated = signed_requests().swap_remove(pick);
        let i = at % mutated.len();
        mutated[i] ^= flip;
        server.handle_client(t0, c.key, &mutated);
        mutated.truncate(cut % (mutated.len() + 1));
        server.handle_client(t0, c.key, &mutated);
        open_relays(&mut server, t0);
        while server.poll_transmit().is_some() {}
        server.handle_timeout(t0 + Duration::from_secs(4000));
        prop_assert_eq!(server.stats().allocations, 0);
    }
}
