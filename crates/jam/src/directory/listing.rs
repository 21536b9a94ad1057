//! Building the answer to CLM_REQ_SERVER_LIST (§6.4): entry 0 is the directory itself (0.0.0.0:0),
//! then every listed server in registration order, each with the address the requesting client can
//! reach it at. The reduced list (CLM_RED_SERVER_LIST) goes first, then the full list. Each list is
//! cut into datagrams of at most 20 000 bytes (what a Jamulus peer receives): with Jamulus' 150
//! entries that is one datagram; larger directories send several, of which a Jamulus client shows
//! the first and tutti's list client all. Encoded lists are cached until the registry changes.

use super::registry::Registry;
use std::net::{Ipv4Addr, SocketAddrV4};
use tutti_proto::frame::{write_frame, MAX_DATAGRAM, OVERHEAD};
use tutti_proto::message::{id, RedServerListEntry, ServerListEntry};
use tutti_proto::Message;

/// The directory's own entry (entry 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnEntry {
    pub name: String,
    pub city: String,
    pub country: u16,
    pub max_clients: u8,
}

/// 10/8, 127/8, 172.16/12, 192.168/16: the "private" test Jamulus applies.
pub fn is_private(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 10 || a == 127 || (a == 172 && (16..32).contains(&b)) || (a == 192 && b == 168)
}

/// The encoded answer for one kind of requester.
#[derive(Debug, Clone, Default)]
pub(crate) struct EncodedLists {
    /// Reduced-list datagrams, then full-list datagrams: sent in this order.
    pub datagrams: Vec<Vec<u8>>,
    pub bytes: usize,
}

#[derive(Debug, Default)]
pub(crate) struct ListCache {
    generation: Option<u64>,
    for_private: Option<EncodedLists>,
    for_public: Option<EncodedLists>,
}

impl ListCache {
    /// The lists for a requester at `client`. Cached unless a listed server shares the client's IP.
    pub fn lists(&mut self, own: &OwnEntry, registry: &Registry, client: Ipv4Addr) -> EncodedLists {
        if self.generation != Some(registry.generation) {
            *self = ListCache { generation: Some(registry.generation), ..ListCache::default() };
        }
        let private = is_private(client);
        if !private && registry.servers_on(client) > 0 {
            return build(own, registry, Some(client));
        }
        let slot = if private { &mut self.for_private } else { &mut self.for_public };
        slot.get_or_insert_with(|| build(own, registry, (!private).then_some(client))).clone()
    }
}

/// `public_client`: the requester's IP when it is public (None = private requester).
fn build(own: &OwnEntry, registry: &Registry, public_client: Option<Ipv4Addr>) -> EncodedLists {
    let mut full = vec![ServerListEntry {
        address: Ipv4Addr::UNSPECIFIED,
        port: 0,
        country: own.country,
        max_clients: own.max_clients,
        permanent: true,
        name: own.name.clone(),
        city: own.city.clone(),
    }];
    for server in registry.iter() {
        let observed = server.address;
        let shown = match public_client {
            None => observed,
            Some(client) if !is_private(*observed.ip()) && *observed.ip() != client => observed,
            Some(_) => server.listing.internal,
        };
        let l = &server.listing;
        full.push(ServerListEntry {
            address: *shown.ip(),
            port: shown.port(),
            country: l.country,
            max_clients: l.max_clients,
            permanent: l.permanent,
            name: l.name.clone(),
            city: l.city.clone(),
        });
    }
    let red: Vec<RedServerListEntry> =
        full.iter().map(|e| RedServerListEntry { address: e.address, port: e.port, name: e.name.clone() }).collect();
    let mut out = EncodedLists::default();
    chunked(&red, |e| 7 + e.name.len(), |part| Message::ClmRedServerList(part.to_vec()), &mut out);
    chunked(&full, |e| 16 + e.name.len() + e.city.len(), |part| Message::ClmServerList(part.to_vec()), &mut out);
    out
}

/// Cuts `entries` into datagrams of at most [`MAX_DATAGRAM`] bytes.
fn chunked<T>(entries: &[T], size: impl Fn(&T) -> usize, message: impl Fn(&[T]) -> Message, out: &mut EncodedLists) {
    let mut start = 0;
    while start < entries.len() {
        let mut end = start;
        let mut len = OVERHEAD;
        while end < entries.len() && (end == start || len + size(&entries[end]) <= MAX_DATAGRAM) {
            len += size(&entries[end]);
            end += 1;
        }
        let msg = message(&entries[start..end]);
        let mut datagram = Vec::with_capacity(len);
        write_frame(&mut datagram, msg.id(), 0, &msg.data());
        debug_assert!(msg.id() == id::CLM_SERVER_LIST || msg.id() == id::CLM_RED_SERVER_LIST);
        debug_assert_eq!(datagram.len(), len);
        out.bytes += datagram.len();
        out.datagrams.push(datagram);
        start = end;
    }
}

/// Where a registered server should send its hole-punching CLM_EMPTY_MESSAGE for this requester:
/// the requester's address, or, for a private requester, the directory's public IP (if it has a
/// non-private one) with the requester's port.
pub(crate) fn punch_target(client: SocketAddrV4, own_public_ip: Option<Ipv4Addr>) -> SocketAddrV4 {
    match own_public_ip {
        Some(ip) if is_private(*client.ip()) && !is_private(ip) => SocketAddrV4::new(ip, client.port()),
        _ => client,
    }
}

#[cfg(test)]
mod tests {
    use super::super::registry::ServerListing;
    use super::*;
    use std::time::Instant;
    use tutti_proto::Frame;

    fn listing(name: &str, internal: SocketAddrV4) -> ServerListing {
        ServerListing {
            name: name.into(),
            city: "SrvCity".into(),
            country: 82,
            max_clients: 8,
            permanent: false,
            internal,
            version: "3.9.1".into(),
        }
    }

    fn own() -> OwnEntry {
        OwnEntry { name: "LoopDirectory".into(), city: "DirCity".into(), country: 82, max_clients: 10 }
    }

    fn decode(datagram: &[u8]) -> Message {
        let frame = Frame::parse(datagram).expect("a valid frame");
        Message::decode(frame.id, frame.data).expect("a valid message")
    }

    #[test]
    fn matches_the_captured_directory_answer_byte_for_byte() {
        // [dir #7] and [dir #8] of jamulus-directory.pcap.
        let mut registry = Registry::default();
        let internal = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 22125);
        registry.upsert(
            Instant::now(),
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 22125),
            listing("RegisteredSrv", internal),
        );
        let lists = ListCache::default().lists(&own(), &registry, Ipv4Addr::LOCALHOST);
        assert_eq!(lists.datagrams.len(), 2);
        let red = "0000fa030028000000000000000d4c6f6f704469726563746f72790100007f6d560d52656769737465726564537276cdbe";
        let full = "0000ee0300480000000000000052000a010d004c6f6f704469726563746f72790000070044697243\
                    6974790100007f6d56520008000d005265676973746572656453727600000700537276436974793cb2";
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(&lists.datagrams[0]), red);
        assert_eq!(hex(&lists.datagrams[1]), full);
    }

    #[test]
    fn addresses_follow_the_requester() {
        let mut registry = Registry::default();
        let now = Instant::now();
        let public = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), 40000);
        let lan = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 20), 22124);
        registry.upsert(now, public, listing("public", SocketAddrV4::new(Ipv4Addr::new(10, 1, 1, 1), 22124)));
        registry.upsert(now, lan, listing("lan", SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 4), 22130)));
        let mut cache = ListCache::default();
        let shown = |lists: EncodedLists| match decode(&lists.datagrams[1]) {
            Message::ClmServerList(list) => {
                list.iter().skip(1).map(|e| SocketAddrV4::new(e.address, e.port)).collect::<Vec<_>>()
            }
            other => panic!("{other:?}"),
        };
        let private_client = shown(cache.lists(&own(), &registry, Ipv4Addr::new(10, 9, 9, 9)));
        assert_eq!(private_client, [public, lan], "private requester: observed addresses");
        let public_client = shown(cache.lists(&own(), &registry, Ipv4Addr::new(198, 51, 100, 77)));
        assert_eq!(public_client[0], public);
        assert_eq!(public_client[1], "198.51.100.4:22130".parse().unwrap(), "LAN server: its --serverpublicip");
        let same_nat = shown(cache.lists(&own(), &registry, *public.ip()));
        assert_eq!(same_nat[0], "10.1.1.1:22124".parse().unwrap(), "same NAT: internal address");
    }

    #[test]
    fn large_lists_are_cut_into_jamulus_sized_datagrams() {
        let mut registry = Registry::default();
        let now = Instant::now();
        for i in 0..10_000u32 {
            let address = SocketAddrV4::new(Ipv4Addr::from(0xCB00_0000 + i), 22124);
            registry.upsert(now, address, listing(&format!("Server number {i}"), address));
        }
        let lists = ListCache::default().lists(&own(), &registry, Ipv4Addr::LOCALHOST);
        let (mut red, mut full) = (0, 0);
        for d in &lists.datagrams {
            assert!(d.len() <= MAX_DATAGRAM);
            match decode(d) {
                Message::ClmRedServerList(l) => red += l.len(),
                Message::ClmServerList(l) => full += l.len(),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((red, full), (10_001, 10_001));
        assert!(lists.datagrams.len() > 4);
    }

    #[test]
    fn private_ranges() {
        for ip in ["10.0.0.1", "127.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1"] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["172.15.0.1", "172.32.0.1", "8.8.8.8", "192.169.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
        let client = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 5), 5000);
        assert_eq!(punch_target(client, Some(Ipv4Addr::new(203, 0, 113, 1))), "203.0.113.1:5000".parse().unwrap());
        assert_eq!(punch_target(client, None), client);
    }
}
