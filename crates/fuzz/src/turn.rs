//! Targets of the TURN relay (tutti-turn): the STUN/ChannelData codec, and the server fed datagrams from
//! clients (over UDP and TCP) and from peers, with time advancing and relays opened as the shell opens them.
//!
//! The server runs with a fixed secret, realm, nonce key and clock ([`TURN_SECRET`], [`TURN_REALM`],
//! [`TURN_UNIX_NOW`]), so seeds made by `fuzz-seed` carry valid credentials and nonces and the fuzzer starts
//! past authentication.

use crate::records;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tutti_turn::server::{ClientKey, Config, Event, RelayId, Server, Transport};
use tutti_turn::stun::{self, Message};

pub const TURN_SECRET: &str = "fuzz-secret";
pub const TURN_REALM: &str = "fuzz.test";
/// The Unix time the fuzzed server starts at (credentials in seeds expire an hour later).
pub const TURN_UNIX_NOW: u64 = 1_800_000_000;

/// One STUN message or ChannelData frame: parsed, every attribute read as each type would be.
pub fn message(input: &[u8]) {
    let _ = stun::frame_len(input);
    if let Ok((_, data)) = stun::parse_channel_data(input) {
        assert!(data.len() <= input.len());
    }
    let Ok(m) = Message::parse(input) else { return };
    for typ in m.types().collect::<Vec<_>>() {
        if let Some(value) = m.get(typ) {
            let _ = m.xor_address(value, typ);
            let _ = stun::error_code(value);
        }
        let _ = m.text(typ);
        let _ = m.u32(typ);
    }
    let _ = m.check_integrity(b"key");
}

/// The fuzzed server's configuration (loopback peers allowed, so relayed traffic is reachable).
pub fn config() -> Config {
    let mut config = Config::new(TURN_REALM, TURN_SECRET, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    config.policy.allow_loopback = true;
    config.user_quota = 3;
    config.total_quota = 6;
    config.nonce_key = [7; 20];
    config
}

/// The client a record comes from: `from` 0–7 are UDP clients, 8–11 TCP clients, 12 and up peers (relay
/// `from % 4`, peer address `from / 16 % 4`).
pub fn client(from: u8) -> ClientKey {
    let transport = if from < 8 { Transport::Udp } else { Transport::Tcp };
    ClientKey {
        transport,
        client: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 40000 + u16::from(from % 12)),
        server: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 3478),
    }
}

/// A peer's address for a record with this `from`.
pub fn peer(from: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), 50000 + u16::from(from / 16 % 4))
}

/// The server driven by a sequence; allocations never exceed the total quota.
pub fn server(input: &[u8]) {
    let start = Instant::now();
    let mut server = Server::new(config(), start, TURN_UNIX_NOW);
    let mut now = start;
    for r in records(input) {
        now += Duration::from_millis(u64::from(r.advance_ms) * 100);
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
        }
        if r.from < 12 {
            server.handle_client(now, client(r.from), r.bytes);
        } else if r.from == 255 {
            server.client_closed(client(r.advance_ms % 12));
        } else {
            server.handle_peer(now, RelayId(u32::from(r.from % 4)), peer(r.from), r.bytes);
        }
        drive(&mut server, now);
        assert!(server.stats().allocations <= 6, "allocations past the total quota");
    }
}

fn drive(server: &mut Server, now: Instant) {
    loop {
        let mut busy = false;
        while let Some(t) = server.poll_transmit() {
            busy = true;
            server.recycle(t.bytes);
        }
        while let Some(event) = server.poll_event() {
            busy = true;
            if let Event::OpenRelay { relay, .. } = event {
                // Every fourth relay fails to open, as a port taken by another program would.
                server.relay_opened(now, relay, relay.0 % 4 != 3);
            }
        }
        if !busy {
            return;
        }
    }
}
