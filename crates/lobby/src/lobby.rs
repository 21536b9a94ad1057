//! The lobby's whole state, sans IO: who is connected (random id, interests, partner, rate budget),
//! the FIFO waiting queue and the pairs. Every operation is synchronous and atomic under the caller's
//! lock, takes the time as an argument and returns the [`Notice`]s the shell must deliver.
//!
//! Matching: a waiter is paired with the oldest compatible waiter that shares an interest; if there is
//! none, with the oldest compatible waiter once both accept a random partner (no interests, or waited
//! longer than `fallback_wait`). Compatible = not itself, and not the partner either of them just left.

use crate::{Budget, Error, Interests, Limits};
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What the shell must tell a socket after an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice<I> {
    /// `to` now has `partner`; the initiator sends the WebRTC offer.
    Matched { to: I, partner: I, initiator: bool, common: Vec<String> },
    /// `to`'s partner pressed next/stop or disconnected.
    PartnerLeft { to: I },
}

/// How many of each thing the lobby holds (all zero when everybody has left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Counts {
    /// Connected sockets.
    pub sockets: usize,
    /// Sockets in the waiting queue.
    pub waiting: usize,
    /// Current pairs.
    pub pairs: usize,
}

/// One connected socket: nothing but what matching and limits need.
#[derive(Debug)]
struct Peer<I> {
    interests: Interests,
    partner: Option<I>,
    /// The partner this socket most recently left (or that left it): never matched again right away.
    skipped: Option<I>,
    /// Position in the queue and when it joined, while waiting.
    waiting: Option<(u64, Instant)>,
    /// Whether the random fallback was already tried for this wait.
    fallback_tried: bool,
    budget: Budget,
}

/// The lobby state. `I` is the socket id (random, unguessable, never reused).
#[derive(Debug)]
pub struct Lobby<I> {
    peers: HashMap<I, Peer<I>>,
    queue: BTreeMap<u64, I>,
    next_seq: u64,
    pairs: usize,
    fallback_wait: Duration,
    limits: Limits,
}

impl<I: Copy + Eq + Hash + std::fmt::Debug> Lobby<I> {
    /// An empty lobby.
    pub fn new(limits: Limits, fallback_wait: Duration) -> Self {
        Lobby { peers: HashMap::new(), queue: BTreeMap::new(), next_seq: 0, pairs: 0, fallback_wait, limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Current counts.
    pub fn counts(&self) -> Counts {
        Counts { sockets: self.peers.len(), waiting: self.queue.len(), pairs: self.pairs }
    }

    /// A new socket arrives (idle: neither waiting nor matched).
    pub fn connect(&mut self, id: I, now: Instant) {
        let peer = Peer {
            interests: Interests::default(),
            partner: None,
            skipped: None,
            waiting: None,
            fallback_tried: false,
            budget: Budget::new(&self.limits, now),
        };
        self.peers.insert(id, peer);
    }

    /// The socket's current partner.
    pub fn partner(&self, id: I) -> Option<I> {
        self.peers.get(&id).and_then(|p| p.partner)
    }

    /// Whether the socket waits in the queue.
    pub fn is_waiting(&self, id: I) -> bool {
        self.peers.get(&id).is_some_and(|p| p.waiting.is_some())
    }

    /// Charges one event to the socket's rate budget. A refusal is a strike; too many strikes give
    /// `Err(Abusive)`, after which the shell disconnects the socket.
    pub fn admit(&mut self, id: I, now: Instant) -> Result<(), Error> {
        let limits = &self.limits;
        let peer = self.peers.get_mut(&id).ok_or(Error::UnknownSocket)?;
        match peer.budget.spend(limits, now) {
            Ok(()) => Ok(()),
            Err(refusal) => {
                peer.budget.strike(limits, now)?;
                Err(refusal)
            }
        }
    }

    /// Records a refusal found by the shell (oversized, malformed); `Err(Abusive)` when persistent.
    pub fn strike(&mut self, id: I, now: Instant) -> Result<(), Error> {
        let limits = &self.limits;
        let peer = self.peers.get_mut(&id).ok_or(Error::UnknownSocket)?;
        peer.budget.strike(limits, now)
    }

    /// `find`: join the queue with these interests (or update them while already waiting) and match
    /// at once if a compatible waiter is there.
    pub fn find(&mut self, id: I, interests: Interests, now: Instant) -> Result<Vec<Notice<I>>, Error> {
        let peer = self.peers.get_mut(&id).ok_or(Error::UnknownSocket)?;
        if peer.partner.is_some() {
            return Err(Error::AlreadyMatched);
        }
        peer.interests = interests;
        if peer.waiting.is_none() {
            self.enqueue(id, now);
        }
        Ok(self.try_match(id, now).into_iter().flatten().collect())
    }

    /// `next`: leave the partner (if any) and queue again with the same interests.
    pub fn next(&mut self, id: I, now: Instant) -> Result<Vec<Notice<I>>, Error> {
        let mut notices = self.leave_partner(id)?;
        if self.peers[&id].waiting.is_none() {
            self.enqueue(id, now);
        }
        notices.extend(self.try_match(id, now).into_iter().flatten());
        Ok(notices)
    }

    /// `stop`: leave the partner and the queue.
    pub fn stop(&mut self, id: I) -> Result<Vec<Notice<I>>, Error> {
        let notices = self.leave_partner(id)?;
        self.dequeue(id);
        Ok(notices)
    }

    /// The socket is gone: everything about it is forgotten.
    pub fn disconnect(&mut self, id: I) -> Vec<Notice<I>> {
        let notices = self.stop(id).unwrap_or_default();
        if let Some(peer) = self.peers.remove(&id) {
            // the one who skipped it has nothing left to avoid
            if let Some(other) = peer.skipped.and_then(|s| self.peers.get_mut(&s)) {
                if other.skipped == Some(id) {
                    other.skipped = None;
                }
            }
        }
        notices
    }

    /// Tries the random fallback for waiters whose wait just ran out. Call a few times a second.
    pub fn tick(&mut self, now: Instant) -> Vec<Notice<I>> {
        let expired: Vec<I> = self
            .queue
            .values()
            .copied()
            .filter(|id| {
                let p = &self.peers[id];
                !p.fallback_tried && !p.interests.is_empty() && self.accepts_random(p, now)
            })
            .collect();
        let mut notices = Vec::new();
        for id in expired {
            if let Some(peer) = self.peers.get_mut(&id) {
                if peer.waiting.is_some() {
                    peer.fallback_tried = true;
                    notices.extend(self.try_match(id, now).into_iter().flatten());
                }
            }
        }
        notices
    }

    fn enqueue(&mut self, id: I, now: Instant) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.insert(seq, id);
        let peer = self.peers.get_mut(&id).expect("enqueue a known peer");
        peer.waiting = Some((seq, now));
        peer.fallback_tried = false;
    }

    fn dequeue(&mut self, id: I) {
        if let Some(peer) = self.peers.get_mut(&id) {
            if let Some((seq, _)) = peer.waiting.take() {
                self.queue.remove(&seq);
            }
        }
    }

    fn leave_partner(&mut self, id: I) -> Result<Vec<Notice<I>>, Error> {
        let peer = self.peers.get_mut(&id).ok_or(Error::UnknownSocket)?;
        let Some(partner) = peer.partner.take() else { return Ok(Vec::new()) };
        peer.skipped = Some(partner);
        if let Some(other) = self.peers.get_mut(&partner) {
            other.partner = None;
            other.skipped = Some(id);
        }
        self.pairs -= 1;
        Ok(vec![Notice::PartnerLeft { to: partner }])
    }

    fn accepts_random(&self, peer: &Peer<I>, now: Instant) -> bool {
        match peer.waiting {
            Some((_, since)) => peer.interests.is_empty() || now.saturating_duration_since(since) >= self.fallback_wait,
            None => false,
        }
    }

    fn compatible(&self, a: I, b: I) -> bool {
        a != b && self.peers[&a].skipped != Some(b) && self.peers[&b].skipped != Some(a)
    }

    /// Pairs the waiting socket `id` with the best waiter, if any.
    fn try_match(&mut self, id: I, now: Instant) -> Option<[Notice<I>; 2]> {
        let me = self.peers.get(&id)?;
        me.waiting?;
        let me_random = self.accepts_random(me, now);
        let mut random = None;
        let mut found = None;
        for &other in self.queue.values() {
            if !self.compatible(id, other) {
                continue;
            }
            let them = &self.peers[&other];
            let common = me.interests.common(&them.interests);
            if !common.is_empty() {
                found = Some((other, common));
                break;
            }
            if random.is_none() && me_random && self.accepts_random(them, now) {
                random = Some(other);
                if me.interests.is_empty() {
                    break; // no overlap is possible: the oldest random partner it is
                }
            }
        }
        let (other, common) = found.or_else(|| random.map(|o| (o, Vec::new())))?;
        self.dequeue(id);
        self.dequeue(other);
        self.peers.get_mut(&id)?.partner = Some(other);
        self.peers.get_mut(&other)?.partner = Some(id);
        self.pairs += 1;
        // the waiter hears first, so that it knows its partner before the initiator's offer arrives
        Some([
            Notice::Matched { to: other, partner: id, initiator: false, common: common.clone() },
            Notice::Matched { to: id, partner: other, initiator: true, common },
        ])
    }
}
