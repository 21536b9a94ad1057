//! The directory state machine driven with datagrams and `Instant`s (no sockets, no sleeping):
//! registration with its cookie check, lists and hole punching, unregistration, expiry, the full
//! list, the filter, persistence, amplification limits and abusive input.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tutti_jam::directory::{
    Directory, DirectoryConfig, DirectoryDrop, Limits, ListFilter, ListPolicy, OwnEntry, EXPIRY, KEEPALIVE,
};
use tutti_proto::message::{OsType, RegistrationResult, ServerInfo};
use tutti_proto::{Frame, Message};

fn config() -> DirectoryConfig {
    DirectoryConfig {
        own: OwnEntry { name: "LoopDirectory".into(), city: "DirCity".into(), country: 82, max_clients: 10 },
        secret: 42,
        ..DirectoryConfig::default()
    }
}

fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

fn info(name: &str) -> ServerInfo {
    ServerInfo {
        port: 22124,
        country: 82,
        max_clients: 8,
        permanent: false,
        name: name.into(),
        internal_address: "10.0.0.2".into(),
        city: "SrvCity".into(),
    }
}

fn register(name: &str) -> Vec<u8> {
    Message::ClmRegisterServerEx { info: info(name), os: OsType::Linux, version: "3.9.1".into() }.to_datagram(0)
}

/// Everything the directory sent, decoded.
fn sent(d: &mut Directory) -> Vec<(SocketAddr, Message)> {
    let mut out = Vec::new();
    while let Some((to, bytes)) = d.poll_transmit() {
        let frame = Frame::parse(bytes).expect("the directory sends valid frames");
        out.push((to, Message::decode(frame.id, frame.data).expect("and valid messages")));
    }
    out
}

/// Registers `from` and echoes the cookie like a Jamulus server. Returns the registration result.
fn register_and_echo(d: &mut Directory, now: Instant, from: SocketAddr, name: &str) -> RegistrationResult {
    d.handle_datagram(now, from, &register(name));
    let mut result = None;
    for (to, message) in sent(d) {
        assert_eq!(to, from);
        match message {
            Message::ClmRegisterServerResp(r) => result = Some(r),
            Message::ClmPingMs(cookie) => d.handle_datagram(now, from, &Message::ClmPingMs(cookie).to_datagram(0)),
            other => panic!("unexpected {other:?}"),
        }
    }
    result.expect("a registration result")
}

fn request_list(d: &mut Directory, now: Instant, from: SocketAddr) -> Vec<(SocketAddr, Message)> {
    d.handle_datagram(now, from, &Message::ClmReqServerList.to_datagram(0));
    sent(d)
}

fn names(d: &Directory) -> Vec<String> {
    d.servers().map(|s| s.listing.name.clone()).collect()
}

#[test]
fn registration_is_listed_after_the_cookie_echo() {
    let now = Instant::now();
    let mut d = Directory::new(config(), now);
    let server = addr([203, 0, 113, 7], 22124);
    d.handle_datagram(now, server, &register("Jam"));
    let out = sent(&mut d);
    assert!(matches!(out[0].1, Message::ClmRegisterServerResp(RegistrationResult::Registered)), "{out:?}");
    let Message::ClmPingMs(cookie) = out[1].1 else { panic!("cookie ping expected: {out:?}") };
    assert!(names(&d).is_empty(), "not listed before the echo");
    assert_eq!(d.pending_count(), 1);
    d.handle_datagram(now, server, &Message::ClmPingMs(cookie.wrapping_add(1)).to_datagram(0));
    assert!(names(&d).is_empty(), "a wrong cookie is just a ping");
    assert!(matches!(sent(&mut d)[..], [(_, Message::ClmPingMs(_))]), "and answered as one");
    d.handle_datagram(now, server, &Message::ClmPingMs(cookie).to_datagram(0));
    assert_eq!(names(&d), ["Jam"]);
    assert!(sent(&mut d).is_empty(), "a cookie echo is not answered");

    // A client on the Internet asks: reduced list, full list, hole punching towards the server.
    let client = addr([198, 51, 100, 9], 50000);
    let out = request_list(&mut d, now + Duration::from_millis(1), client);
    let to_client: Vec<&Message> = out.iter().filter(|(to, _)| *to == client).map(|(_, m)| m).collect();
    assert!(matches!(to_client[0], Message::ClmPingMs(_)), "cookie first: {to_client:?}");
    let Message::ClmRedServerList(red) = to_client[1] else { panic!("{to_client:?}") };
    let Message::ClmServerList(full) = to_client[2] else { panic!("{to_client:?}") };
    assert_eq!((red.len(), full.len()), (2, 2));
    assert_eq!((full[0].address, full[0].port, full[0].name.as_str()), (Ipv4Addr::UNSPECIFIED, 0, "LoopDirectory"));
    assert!(full[0].permanent);
    assert_eq!(
        (full[1].address, full[1].port, full[1].city.as_str()),
        (Ipv4Addr::new(203, 0, 113, 7), 22124, "SrvCity")
    );
    let punch: Vec<_> = out.iter().filter(|(to, _)| *to == server).collect();
    assert!(
        matches!(punch[..], [(_, Message::ClmSendEmptyMessage { address, port: 50000 })] if *address == Ipv4Addr::new(198, 51, 100, 9)),
        "{punch:?}"
    );

    // Unregistration removes it; entry 0 stays.
    d.handle_datagram(now, server, &Message::ClmUnregisterServer.to_datagram(0));
    assert!(names(&d).is_empty());
}

#[test]
fn unverified_registrations_are_dropped_after_three_pings() {
    let now = Instant::now();
    let mut d = Directory::new(config(), now);
    d.handle_datagram(now, addr([203, 0, 113, 8], 1), &register("Forged"));
    let mut pings = 0;
    for s in 0..10 {
        d.handle_timeout(now + Duration::from_secs(s));
        pings += sent(&mut d).iter().filter(|(_, m)| matches!(m, Message::ClmPingMs(_))).count();
    }
    assert_eq!(pings, 3, "the registration itself pinged once, then twice more");
    assert_eq!((d.pending_count(), d.server_count()), (0, 0));
    assert_eq!(d.stats().dropped(DirectoryDrop::Unverified), 1);
}

#[test]
fn entries_expire_33_minutes_after_their_last_registration() {
    let t0 = Instant::now();
    let mut d = Directory::new(config(), t0);
    let (a, b) = (addr([203, 0, 113, 1], 1000), addr([203, 0, 113, 2], 1000));
    register_and_echo(&mut d, t0, a, "A");
    register_and_echo(&mut d, t0, b, "B");
    // B refreshes every 15 minutes; A does not.
    let mut keepalives = 0;
    let mut now = t0;
    while now < t0 + EXPIRY + Duration::from_secs(120) {
        now += Duration::from_secs(30);
        if (now - t0).as_secs().is_multiple_of(900) {
            register_and_echo(&mut d, now, b, "B");
        }
        d.handle_timeout(now);
        keepalives += sent(&mut d).iter().filter(|(_, m)| *m == Message::ClmEmptyMessage).count();
    }
    assert_eq!(names(&d), ["B"]);
    let minutes = (now - t0).as_secs() / KEEPALIVE.as_secs();
    assert!(keepalives as u64 >= minutes, "a keep-alive to every server every 59 s ({keepalives})");
}

#[test]
fn full_list_filter_and_version() {
    let now = Instant::now();
    let mut d = Directory::new(DirectoryConfig { max_servers: 3, ..config() }, now);
    assert_eq!(register_and_echo(&mut d, now, addr([203, 0, 113, 1], 1), "A"), RegistrationResult::Registered);
    assert_eq!(register_and_echo(&mut d, now, addr([203, 0, 113, 1], 2), "B"), RegistrationResult::Registered);
    assert_eq!(register_and_echo(&mut d, now, addr([203, 0, 113, 1], 3), "C"), RegistrationResult::ListFull);
    assert_eq!(register_and_echo(&mut d, now, addr([203, 0, 113, 1], 1), "A2"), RegistrationResult::Registered);
    assert_eq!(names(&d), ["A2", "B"], "a known server still refreshes when full");

    let filter = ListFilter::parse("203.0.113.1;[3.9.0]").unwrap();
    let mut d = Directory::new(DirectoryConfig { filter, ..config() }, now);
    assert_eq!(
        register_and_echo(&mut d, now, addr([203, 0, 113, 2], 1), "X"),
        RegistrationResult::RequirementsNotFulfilled
    );
    let old = Message::ClmRegisterServerEx { info: info("Old"), os: OsType::Linux, version: "3.8.2".into() };
    d.handle_datagram(now, addr([203, 0, 113, 1], 1), &old.to_datagram(0));
    assert!(matches!(sent(&mut d)[..], [(_, Message::ClmRegisterServerResp(RegistrationResult::VersionTooOld))]));
    d.handle_datagram(now, addr([203, 0, 113, 1], 1), &Message::ClmRegisterServer(info("Legacy")).to_datagram(0));
    assert!(matches!(sent(&mut d)[..], [(_, Message::ClmRegisterServerResp(RegistrationResult::VersionTooOld))]));
    assert_eq!(register_and_echo(&mut d, now, addr([203, 0, 113, 1], 1), "Ok"), RegistrationResult::Registered);
    assert_eq!(names(&d), ["Ok"]);
}

#[test]
fn persistence_round_trip_and_snapshots_only_on_change() {
    let now = Instant::now();
    let mut d = Directory::new(config(), now);
    assert!(d.take_snapshot(now).is_none(), "nothing changed yet");
    register_and_echo(&mut d, now, addr([203, 0, 113, 1], 1), "First");
    register_and_echo(&mut d, now, addr([192, 168, 1, 2], 2), "Second ♪");
    let text = d.take_snapshot(now).expect("changed");
    assert!(d.take_snapshot(now + Duration::from_secs(10)).is_none(), "unchanged since");
    register_and_echo(&mut d, now, addr([203, 0, 113, 1], 1), "First");
    assert!(d.take_snapshot(now + Duration::from_secs(20)).is_none(), "a plain refresh changes nothing");

    let mut restarted = Directory::new(config(), now);
    assert_eq!(restarted.load(now, &format!("garbage\n{text}")), (2, 1));
    assert_eq!(names(&restarted), ["First", "Second ♪"]);
    let reloaded: Vec<_> = restarted.servers().map(|s| (s.address, s.listing.clone())).collect();
    let original: Vec<_> = d.servers().map(|s| (s.address, s.listing.clone())).collect();
    for ((a1, l1), (a2, l2)) in reloaded.iter().zip(&original) {
        assert_eq!(
            (a1, &l1.name, &l1.city, l1.country, l1.internal),
            (a2, &l2.name, &l2.city, l2.country, l2.internal)
        );
    }
}

#[test]
fn a_list_reader_leaves_only_amplification_counters_in_memory_forgotten_when_idle() {
    let start = Instant::now();
    let mut d = Directory::new(config(), start);
    let server = addr([203, 0, 113, 7], 22124);
    register_and_echo(&mut d, start, server, "Jam");
    let written = d.take_snapshot(start).expect("the registration is what gets written");
    // One reader asks like a Jamulus client (never echoes), one like tutti's list client (echoes the cookie).
    let (plain, proving) = (addr([198, 51, 100, 9], 50000), addr([198, 51, 100, 10], 50001));
    for i in 0..3 {
        let now = start + Duration::from_secs(i);
        request_list(&mut d, now, plain);
        for (to, message) in request_list(&mut d, now, proving) {
            if let (true, Message::ClmPingMs(cookie)) = (to == proving, message) {
                d.handle_datagram(now, proving, &Message::ClmPingMs(cookie).to_datagram(0));
            }
        }
    }
    let now = start + Duration::from_secs(3);
    assert!(d.take_snapshot(now).is_none(), "reading the list changes nothing that is written");
    assert_eq!(d.snapshot(), written);
    assert!(!written.contains("198.51.100"), "no reader in what is written: {written}");
    assert_eq!(names(&d), ["Jam"], "only what it lists");
    assert!(d.tracks_source(plain.ip()) && d.tracks_source(proving.ip()), "counters while they read");
    // Pruned each minute: two idle minutes forget the plain reader, the proven one goes when its proof (10 min) expires.
    for (after, plain_kept, proving_kept) in [(119, true, true), (185, false, true), (605, false, false)] {
        d.handle_timeout(start + Duration::from_secs(after));
        sent(&mut d);
        assert_eq!(
            (d.tracks_source(plain.ip()), d.tracks_source(proving.ip())),
            (plain_kept, proving_kept),
            "after {after} s"
        );
    }
    assert_eq!(names(&d), ["Jam"]);
}

/// Bytes the directory sent to `victim` per byte it received claiming to come from there.
fn flood_ratio(policy: ListPolicy, servers: usize, requests: u16) -> (f64, u64) {
    let t0 = Instant::now();
    let mut d = Directory::new(
        DirectoryConfig { limits: Limits { policy, ..Limits::default() }, max_servers: 1000, ..config() },
        t0,
    );
    for i in 0..servers {
        register_and_echo(&mut d, t0, addr([203, 0, 113, (i / 200) as u8], 1000 + i as u16), "A server name");
    }
    let victim = [198, 51, 100, 1];
    let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
    for i in 0..requests {
        let now = t0 + Duration::from_millis(10 * u64::from(i));
        let request = Message::ClmReqServerList.to_datagram(0);
        bytes_in += request.len() as u64;
        d.handle_datagram(now, addr(victim, 1024 + i), &request);
        while let Some((to, bytes)) = d.poll_transmit() {
            if to.ip() == Ipv4Addr::from(victim) {
                bytes_out += bytes.len() as u64;
            }
        }
    }
    (bytes_out as f64 / bytes_in as f64, bytes_out)
}

#[test]
fn spoofed_list_requests_are_not_amplified() {
    // Strict: never more than 3x, whatever the list size.
    for servers in [0, 1, 100] {
        let (ratio, _) = flood_ratio(ListPolicy::Strict, servers, 1000);
        assert!(ratio <= 3.0, "strict, {servers} servers: {ratio:.2}x");
    }
    // Jamulus-compatible: on top of the 3x credit, one courtesy answer per 5 s per IP, so a 10 s
    // flood of 1000 requests (9000 bytes) gets at most 27000 bytes plus two lists.
    let (ratio, out) = flood_ratio(ListPolicy::Jamulus, 100, 1000);
    let (_, one_answer) = flood_ratio(ListPolicy::Jamulus, 100, 1);
    assert!(out <= 3 * 9000 + 2 * one_answer, "{out} bytes ({ratio:.2}x), one answer = {one_answer} bytes");
    let (single, _) = flood_ratio(ListPolicy::Jamulus, 100, 1);
    assert!(single > 3.0, "the price of compatibility: a single forged request gets a whole list ({single:.0}x)");
}

#[test]
fn abusive_input_is_counted_and_dropped_and_legit_servers_still_register() {
    let now = Instant::now();
    let mut d = Directory::new(config(), now);
    let mut seed = 0x1234_5678_u32;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for i in 0..20_000u32 {
        let from = addr([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], (random() % 65535) as u16 + 1);
        let datagram = match i % 4 {
            // Random bytes.
            0 => (0..random() % 64).map(|_| random() as u8).collect(),
            // A registration with a bogus field (unparsable internal address).
            1 => {
                let mut bad = info("Bogus");
                bad.internal_address = "not an address".into();
                Message::ClmRegisterServer(bad).to_datagram(0)
            }
            // Valid-looking registrations from addresses that never echo.
            2 => register(&format!("Spam {i}")),
            // A wrong cookie and list requests.
            _ => Message::ClmPingMs(random()).to_datagram(0),
        };
        d.handle_datagram(now, from, &datagram);
        d.handle_datagram(now, from, &Message::ClmReqServerList.to_datagram(0));
        while d.poll_transmit().is_some() {}
    }
    assert!(d.pending_count() <= 1024, "pending table bounded");
    assert!(d.stats().dropped(DirectoryDrop::InvalidMessage) > 0);
    assert!(d.stats().dropped(DirectoryDrop::NotProtocol) > 0);
    assert!(d.stats().dropped(DirectoryDrop::PendingEvicted) > 0);
    assert_eq!(d.server_count(), 0, "no forged registration is listed");
    assert_eq!(register_and_echo(&mut d, now, addr([203, 0, 113, 50], 22124), "Legit"), RegistrationResult::Registered);
    assert_eq!(names(&d), ["Legit"]);
}

/// Two jam servers wired back to back in memory: B registers with A, which is its own directory.
#[test]
fn a_server_registers_with_a_server_that_is_its_own_directory() {
    use tutti_jam::registration::{RegistrationConfig, RegistrationStatus};
    use tutti_jam::{Server, ServerConfig};
    let (a_addr, b_addr, client) = (addr([127, 0, 0, 1], 22124), addr([127, 0, 0, 1], 22125), addr([127, 0, 0, 1], 5));
    let mut a = Server::new(ServerConfig { directory: Some(config()), max_channels: 12, ..ServerConfig::default() });
    let registration = RegistrationConfig { directory: a_addr, info: info("B") };
    let mut b = Server::new(ServerConfig { registration: Some(registration), ..ServerConfig::default() });
    let t0 = Instant::now();
    let mut to_client = Vec::new();
    for step in 0..10 {
        let now = t0 + Duration::from_millis(100 * step);
        a.handle_timeout(now);
        b.handle_timeout(now);
        if step == 5 {
            a.handle_datagram(now, client, &Message::ClmReqServerList.to_datagram(0));
        }
        let mut moved = true;
        while moved {
            moved = false;
            while let Some((to, bytes)) = b.poll_transmit() {
                assert_eq!(to, a_addr, "B talks to its directory only");
                let bytes = bytes.to_vec();
                a.handle_datagram(now, b_addr, &bytes);
                moved = true;
            }
            while let Some((to, bytes)) = a.poll_transmit() {
                let bytes = bytes.to_vec();
                if to == b_addr {
                    b.handle_datagram(now, a_addr, &bytes);
                    moved = true;
                } else {
                    let frame = Frame::parse(&bytes).unwrap();
                    to_client.push(Message::decode(frame.id, frame.data).unwrap());
                }
            }
        }
    }
    assert_eq!(b.registration_status(), Some(RegistrationStatus::Registered));
    let listed: Vec<_> = a.directory().unwrap().servers().map(|s| s.listing.name.clone()).collect();
    assert_eq!(listed, ["B"]);
    let full = to_client.iter().find_map(|m| match m {
        Message::ClmServerList(l) => Some(l.clone()),
        _ => None,
    });
    let full = full.expect("a full list for the client");
    assert_eq!((full[0].max_clients, full[1].name.as_str(), full[1].port), (12, "B", 22125));
    b.unregister();
    let (to, bytes) = b.poll_transmit().expect("an unregistration");
    assert_eq!(to, a_addr);
    let bytes = bytes.to_vec();
    a.handle_datagram(t0 + Duration::from_secs(2), b_addr, &bytes);
    assert_eq!(a.directory().unwrap().server_count(), 0);
}
