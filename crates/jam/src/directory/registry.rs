//! The servers a directory lists, keyed by the source address of their registration and kept in
//! registration order, plus registrations that wait for their reachability check (a cookie ping the
//! server must echo) before they are listed. Both tables are bounded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

/// What a directory keeps about a server: only what it lists, plus the version it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerListing {
    pub name: String,
    pub city: String,
    /// Qt 5 country number.
    pub country: u16,
    pub max_clients: u8,
    pub permanent: bool,
    /// The address the server reported for itself and its own port (listed to clients behind the
    /// same NAT, and for servers on the directory's private network).
    pub internal: SocketAddrV4,
    /// Empty for legacy registrations and entries loaded from the persistence file.
    pub version: String,
}

/// A listed server.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The source address of its registrations (the key).
    pub address: SocketAddrV4,
    pub listing: ServerListing,
    pub refreshed: Instant,
}

/// A registration that has been answered but is not listed until the server echoes our cookie.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub listing: ServerListing,
    pub pings_sent: u8,
    pub next_ping: Instant,
}

/// Result of [`Registry::upsert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upsert {
    Added,
    Updated,
    Refreshed,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    entries: BTreeMap<u64, Registered>,
    index: HashMap<SocketAddrV4, u64>,
    /// How many listed servers have each source IP (for the same-NAT rule and the per-IP cap).
    ips: HashMap<Ipv4Addr, u32>,
    next_seq: u64,
    /// Bumped whenever something a list shows changed (cache key).
    pub generation: u64,
    pending: HashMap<SocketAddrV4, (u64, Pending)>,
    pending_order: VecDeque<(SocketAddrV4, u64)>,
    /// Every pending registration by when it is due a ping (or its drop): (next ping, its sequence number).
    ping_queue: BTreeMap<(Instant, u64), SocketAddrV4>,
}

impl Registry {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Registered> {
        self.entries.values()
    }

    pub fn contains(&self, address: SocketAddrV4) -> bool {
        self.index.contains_key(&address)
    }

    pub fn servers_on(&self, ip: Ipv4Addr) -> u32 {
        self.ips.get(&ip).copied().unwrap_or(0)
    }

    /// Adds or updates a listed server; a known key keeps its place in the order.
    pub fn upsert(&mut self, now: Instant, address: SocketAddrV4, listing: ServerListing) -> Upsert {
        if let Some(seq) = self.index.get(&address) {
            let entry = self.entries.get_mut(seq).expect("index and entries agree");
            entry.refreshed = now;
            if entry.listing == listing {
                return Upsert::Refreshed;
            }
            entry.listing = listing;
            self.generation += 1;
            return Upsert::Updated;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(seq, Registered { address, listing, refreshed: now });
        self.index.insert(address, seq);
        *self.ips.entry(*address.ip()).or_insert(0) += 1;
        self.generation += 1;
        Upsert::Added
    }

    pub fn remove(&mut self, address: SocketAddrV4) -> bool {
        let Some(seq) = self.index.remove(&address) else { return false };
        self.entries.remove(&seq);
        if let Some(n) = self.ips.get_mut(address.ip()) {
            *n -= 1;
            if *n == 0 {
                self.ips.remove(address.ip());
            }
        }
        self.generation += 1;
        true
    }

    /// Removes servers not refreshed since `deadline`; returns how many.
    pub fn expire(&mut self, deadline: Instant) -> usize {
        let stale: Vec<SocketAddrV4> =
            self.entries.values().filter(|e| e.refreshed < deadline).map(|e| e.address).collect();
        for address in &stale {
            self.remove(*address);
        }
        stale.len()
    }

    // --- registrations waiting for their reachability check --------------------------------------

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Adds (or replaces) a pending registration; evicts the oldest when `max` are waiting.
    /// Returns true if an older pending registration was evicted.
    pub fn add_pending(&mut self, address: SocketAddrV4, pending: Pending, max: usize) -> bool {
        let mut evicted = false;
        if let Some((seq, old)) = self.pending.remove(&address) {
            self.ping_queue.remove(&(old.next_ping, seq));
        } else {
            while self.pending.len() >= max.max(1) {
                let Some((old, seq)) = self.pending_order.pop_front() else { break };
                if self.pending.get(&old).is_some_and(|(s, _)| *s == seq) {
                    self.take_pending(old);
                    evicted = true;
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ping_queue.insert((pending.next_ping, seq), address);
        self.pending.insert(address, (seq, pending));
        self.pending_order.push_back((address, seq));
        if self.pending_order.len() > 4 * max.max(1) {
            let pending = &self.pending;
            self.pending_order.retain(|(a, s)| pending.get(a).is_some_and(|(p, _)| p == s));
        }
        evicted
    }

    pub fn take_pending(&mut self, address: SocketAddrV4) -> Option<Pending> {
        let (seq, pending) = self.pending.remove(&address)?;
        self.ping_queue.remove(&(pending.next_ping, seq));
        Some(pending)
    }

    /// When the next pending registration is due a ping or its drop.
    pub fn next_ping(&self) -> Option<Instant> {
        self.ping_queue.first_key_value().map(|((at, _), _)| *at)
    }

    /// Every pending registration due at `now`: those with fewer than `pings` pings sent get one more (their
    /// addresses are returned, the next due `interval` later); the others are dropped (counted in the second
    /// value). Costs O(log n) per registration due, nothing for the others.
    pub fn due_pings(&mut self, now: Instant, pings: u8, interval: std::time::Duration) -> (Vec<SocketAddrV4>, usize) {
        let mut due = Vec::new();
        let mut dropped = 0;
        while let Some(entry) = self.ping_queue.first_entry() {
            let (at, seq) = *entry.key();
            if at > now {
                break;
            }
            let address = entry.remove();
            let Some((current, pending)) = self.pending.get_mut(&address) else { continue };
            if *current != seq {
                continue;
            }
            if pending.pings_sent < pings {
                pending.pings_sent += 1;
                pending.next_ping = now + interval;
                self.ping_queue.insert((pending.next_ping, seq), address);
                due.push(address);
            } else {
                self.pending.remove(&address);
                dropped += 1;
            }
        }
        (due, dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(name: &str) -> ServerListing {
        ServerListing {
            name: name.into(),
            city: String::new(),
            country: 0,
            max_clients: 10,
            permanent: false,
            internal: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 22124),
            version: "3.9.1".into(),
        }
    }

    fn addr(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), port)
    }

    #[test]
    fn keeps_registration_order_and_updates_in_place() {
        let now = Instant::now();
        let mut r = Registry::default();
        assert_eq!(r.upsert(now, addr(1), listing("a")), Upsert::Added);
        assert_eq!(r.upsert(now, addr(2), listing("b")), Upsert::Added);
        let g = r.generation;
        assert_eq!(r.upsert(now, addr(1), listing("a")), Upsert::Refreshed);
        assert_eq!(r.generation, g, "a plain refresh does not invalidate lists");
        assert_eq!(r.upsert(now, addr(1), listing("a2")), Upsert::Updated);
        let names: Vec<_> = r.iter().map(|e| e.listing.name.as_str()).collect();
        assert_eq!(names, ["a2", "b"]);
        assert_eq!(r.servers_on(*addr(1).ip()), 2);
        assert!(r.remove(addr(1)) && !r.remove(addr(1)));
        assert_eq!(r.servers_on(*addr(1).ip()), 1);
    }

    #[test]
    fn pending_registrations_are_pinged_in_time_order_then_dropped() {
        use std::time::Duration;
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let pending = |at: Instant| Pending { listing: listing("p"), pings_sent: 0, next_ping: at };
        let mut r = Registry::default();
        r.add_pending(addr(1), pending(start), 10);
        r.add_pending(addr(2), pending(start + second), 10);
        r.add_pending(addr(3), pending(start + 2 * second), 10);
        assert_eq!(r.next_ping(), Some(start));
        assert_eq!(r.due_pings(start, 2, second), (vec![addr(1)], 0));
        assert_eq!(r.next_ping(), Some(start + second), "addr 2 first, then addr 1 again");
        assert_eq!(r.due_pings(start + second, 2, second), (vec![addr(1), addr(2)], 0));
        assert!(r.take_pending(addr(3)).is_some(), "taken before its ping: never pinged");
        assert_eq!(r.due_pings(start + 2 * second, 2, second), (vec![addr(2)], 1), "addr 1 had its two pings");
        assert_eq!(r.due_pings(start + 3 * second, 2, second), (vec![], 1));
        assert_eq!((r.pending_len(), r.next_ping()), (0, None));
        // Replacing a pending registration moves its ping; evicting one forgets it.
        r.add_pending(addr(4), pending(start), 1);
        r.add_pending(addr(4), pending(start + 5 * second), 1);
        assert_eq!(r.next_ping(), Some(start + 5 * second));
        assert!(r.add_pending(addr(5), pending(start + 9 * second), 1), "addr 4 evicted");
        assert_eq!(r.next_ping(), Some(start + 9 * second));
    }

    #[test]
    fn pending_table_is_bounded_and_evicts_oldest() {
        let now = Instant::now();
        let mut r = Registry::default();
        let p = || Pending { listing: listing("p"), pings_sent: 0, next_ping: now };
        for port in 0..10 {
            r.add_pending(addr(port), p(), 4);
        }
        assert_eq!(r.pending_len(), 4);
        assert!(r.take_pending(addr(0)).is_none(), "oldest evicted");
        assert!(r.take_pending(addr(9)).is_some());
    }
}
