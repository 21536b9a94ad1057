//! Targets of the jam state machines (tutti-jam): the server's and the directory's `handle_datagram`, fed a
//! sequence of datagrams from several addresses with time advancing, timers run as the shell runs them.

use crate::records;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tutti_jam::directory::{Directory, DirectoryConfig};
use tutti_jam::{Server, ServerConfig, MAX_CHANNELS};

/// One of 16 senders: four hosts, four ports each (so port changes behind one address are covered too).
fn sender(from: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + from % 4)), 22000 + u16::from(from / 4 % 4))
}

/// The jam server with a small channel table: channels never exceed the maximum, and nothing panics.
pub fn server(input: &[u8]) {
    let config = ServerConfig { max_channels: 4, ..ServerConfig::default() };
    let mut server = Server::new(config);
    let mut now = Instant::now();
    for r in records(input) {
        now += Duration::from_millis(u64::from(r.advance_ms));
        run_timers(&mut server, now);
        server.handle_datagram(now, sender(r.from), r.bytes);
        while server.poll_transmit().is_some() {}
        while server.poll_event().is_some() {}
        assert!(server.connected_clients() <= 4, "more clients than channels");
        assert!(server.connected_clients() <= MAX_CHANNELS);
    }
    run_timers(&mut server, now + Duration::from_secs(60));
}

fn run_timers(server: &mut Server, now: Instant) {
    // As the shell does: one call with the current time when something is due. The server runs the ticks
    // due (at most 50 periods of backlog, beyond that it skips them), so a step costs at most ~50 ticks of
    // mixing and encoding, not one call per period (which made the target run at 46 executions a second).
    if server.poll_timeout().is_some_and(|t| t <= now) {
        server.handle_timeout(now);
    }
    while server.poll_transmit().is_some() {}
}

/// The directory: registrations, list requests and everything else from 16 senders (the first byte's low bit
/// also says whether registrations need their cookie echo).
pub fn directory(input: &[u8]) {
    let start = Instant::now();
    // Registrations are listed at once in half the inputs (no cookie echo needed, so the fuzzer gets past it).
    let trusting = input.first().is_some_and(|b| b & 1 == 1);
    let config = DirectoryConfig { verify_registrations: !trusting, ..DirectoryConfig::default() };
    let mut directory = Directory::new(config, start);
    let mut now = start;
    for r in records(input) {
        now += Duration::from_millis(u64::from(r.advance_ms) * 40);
        if directory.poll_timeout() <= now {
            directory.handle_timeout(now);
        }
        directory.handle_datagram(now, sender(r.from), r.bytes);
        while directory.poll_transmit().is_some() {}
        while directory.poll_event().is_some() {}
        assert!(
            directory.server_count() <= directory.config().max_servers.max(1) + 1,
            "the list grew past its maximum"
        );
    }
}
