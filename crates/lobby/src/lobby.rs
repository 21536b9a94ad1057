//! The lobby's whole state, sans IO: who is connected (random id, interests, partner, rate budget),
//! the FIFO waiting queue and the pairs. Every operation is synchronous and atomic under the caller's
//! lock, takes the time as an argument and returns the [`Notice`]s the shell must deliver.
//!
//! Matching: a waiter is paired with the oldest compatible waiter that shares an interest; if there is
//! none, with the oldest compatible waiter once both accept a random partner (no interests, or waited
//! longer than `fallback_wait`). Compatible = not itself, and not the partner either of them just left.
//!
//! Calls by ID: a socket proves its identity (the shell checks the signature over a fresh challenge
//! kept here) and may make that ID reachable; another socket rings it, and an accepted call pairs the
//! two exactly as a match does. The map ID → socket lives here only while the socket is connected.

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
    /// `to` is called by `from` (the shell adds `from`'s identity proof).
    Ring { to: I, from: I },
    /// `to`'s pending call (made or received) is over without a match.
    CallEnded { to: I, reason: CallEnd },
}

/// Why a call ended without a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// The callee declined.
    Declined,
    /// Nobody answered within the ring timeout.
    Timeout,
    /// The caller hung up before an answer.
    Canceled,
    /// The other side disconnected.
    Gone,
}

impl CallEnd {
    /// The `reason` sent in `call_ended`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallEnd::Declined => "declined",
            CallEnd::Timeout => "timeout",
            CallEnd::Canceled => "canceled",
            CallEnd::Gone => "gone",
        }
    }

    /// From [`CallEnd::as_str`].
    pub fn parse(text: &str) -> Option<CallEnd> {
        [CallEnd::Declined, CallEnd::Timeout, CallEnd::Canceled, CallEnd::Gone].into_iter().find(|r| r.as_str() == text)
    }
}

/// How long a fresh challenge may be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(60);

/// A pending call, as one of its two sockets sees it.
#[derive(Debug, Clone, Copy)]
struct Call<I> {
    other: I,
    outgoing: bool,
    /// When the ring times out (kept on both sides).
    until: Instant,
}

/// A socket's proven identity: its ID (40 hex digits) and the proof its callees are shown.
#[derive(Debug, Clone)]
struct Identity {
    id: String,
    proof: serde_json::Value,
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

/// What the limits did since the lobby started (never reset; counts only, nothing about anyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Refusals {
    /// Events refused for a limit (rate, size, malformed payload, bad proof): each is a strike.
    pub strikes: u64,
    /// Sockets whose strikes passed the limit within the window: the shell disconnects them.
    pub cut: u64,
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
    /// When it connected.
    since: Instant,
    /// The last challenge handed out and when.
    challenge: Option<(String, Instant)>,
    identity: Option<Identity>,
    call: Option<Call<I>>,
}

/// Gives a map's room back once it holds under a quarter of what it has room for (keeping room for
/// twice what it holds): a map never shrinks by itself, and a peer takes a few hundred bytes.
pub(crate) fn shrink_when_sparse<K: Eq + Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 4 * map.len().max(64) {
        let len = map.len();
        map.shrink_to(2 * len);
    }
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
    /// Reachable IDs → their socket (the newest socket that turned it on).
    reachable: HashMap<String, I>,
    ring_timeout: Duration,
    refusals: Refusals,
}

impl<I: Copy + Eq + Hash + std::fmt::Debug> Lobby<I> {
    /// An empty lobby.
    pub fn new(limits: Limits, fallback_wait: Duration) -> Self {
        Lobby {
            peers: HashMap::new(),
            queue: BTreeMap::new(),
            next_seq: 0,
            pairs: 0,
            fallback_wait,
            limits,
            reachable: HashMap::new(),
            ring_timeout: Duration::from_secs(30),
            refusals: Refusals::default(),
        }
    }

    /// How long a call rings before it times out (30 s by default).
    pub fn with_ring_timeout(mut self, ring_timeout: Duration) -> Self {
        self.ring_timeout = ring_timeout;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Current counts.
    pub fn counts(&self) -> Counts {
        Counts { sockets: self.peers.len(), waiting: self.queue.len(), pairs: self.pairs }
    }

    /// Strikes and sockets cut for abuse so far.
    pub fn refusals(&self) -> Refusals {
        self.refusals
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
            since: now,
            challenge: None,
            identity: None,
            call: None,
        };
        self.peers.insert(id, peer);
    }

    /// The sockets that connected before `before` (for the shell's check that each still exists).
    pub fn connected_before(&self, before: Instant) -> Vec<I> {
        self.peers.iter().filter(|(_, p)| p.since < before).map(|(id, _)| *id).collect()
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
        let peer = self.peers.get_mut(&id).ok_or(Error::UnknownSocket)?;
        match peer.budget.spend(&self.limits, now) {
            Ok(()) => Ok(()),
            Err(refusal) => {
                self.strike(id, now)?;
                Err(refusal)
            }
        }
    }

    /// Records a refusal found by the shell (oversized, malformed); `Err(Abusive)` when persistent.
    pub fn strike(&mut self, id: I, now: Instant) -> Result<(), Error> {
        let limits = &self.limits;
        let peer = self.peers.get_mut(&id).ok_or(Error::UnknownSocket)?;
        self.refusals.strikes += 1;
        let outcome = peer.budget.strike(limits, now);
        // counted once, when the limit is first passed (the socket's last events may still arrive)
        if outcome.is_err() && peer.budget.strikes() == limits.strikes + 1 {
            self.refusals.cut += 1;
        }
        outcome
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
        let mut notices = self.stop(id).unwrap_or_default();
        notices.extend(self.end_call(id, CallEnd::Gone));
        if let Some(identity) = self.peers.get(&id).and_then(|p| p.identity.as_ref()) {
            if self.reachable.get(&identity.id) == Some(&id) {
                self.reachable.remove(&identity.id);
            }
        }
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

    /// Gives back the room of its maps once they hold under a quarter of what they have room for: a
    /// crowd gone (abusers cut, a reconnect storm over) leaves them sized for its peak otherwise.
    /// Call now and then (not on every disconnect: resizing back and forth under churn fragments
    /// the allocator's memory).
    pub fn shrink(&mut self) {
        shrink_when_sparse(&mut self.peers);
        shrink_when_sparse(&mut self.reachable);
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
        let mut notices = self.ring_timeouts(now);
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

    /// Keeps the challenge just handed to the socket (replacing any earlier one).
    pub fn set_challenge(&mut self, id: I, challenge: String, now: Instant) -> Result<(), Error> {
        self.peers.get_mut(&id).ok_or(Error::UnknownSocket)?.challenge = Some((challenge, now));
        Ok(())
    }

    /// The socket's challenge, once: `None` if there is none or it is older than [`CHALLENGE_TTL`].
    pub fn take_challenge(&mut self, id: I, now: Instant) -> Option<String> {
        let (challenge, at) = self.peers.get_mut(&id)?.challenge.take()?;
        (now.saturating_duration_since(at) < CHALLENGE_TTL).then_some(challenge)
    }

    /// The shell checked the socket's proof of `identity` (40 hex digits): it is that identity now
    /// (not reachable until it says so; a previous identity's reachability ends).
    pub fn identify(&mut self, id: I, identity: String, proof: serde_json::Value) -> Result<(), Error> {
        let peer = self.peers.get_mut(&id).ok_or(Error::UnknownSocket)?;
        if let Some(old) = peer.identity.take() {
            if self.reachable.get(&old.id) == Some(&id) {
                self.reachable.remove(&old.id);
            }
        }
        peer.identity = Some(Identity { id: identity, proof });
        Ok(())
    }

    /// The socket's proven ID.
    pub fn identity(&self, id: I) -> Option<&str> {
        self.peers.get(&id)?.identity.as_ref().map(|i| i.id.as_str())
    }

    /// The proof the socket gave for its identity (shown to those it calls).
    pub fn proof(&self, id: I) -> Option<&serde_json::Value> {
        self.peers.get(&id)?.identity.as_ref().map(|i| &i.proof)
    }

    /// Makes the socket's ID reachable (the newest socket of an ID wins) or not.
    pub fn set_reachable(&mut self, id: I, on: bool) -> Result<(), Error> {
        let peer = self.peers.get(&id).ok_or(Error::UnknownSocket)?;
        let identity = peer.identity.as_ref().ok_or(Error::NotIdentified)?.id.clone();
        if on {
            self.reachable.insert(identity, id);
        } else if self.reachable.get(&identity) == Some(&id) {
            self.reachable.remove(&identity);
        }
        Ok(())
    }

    /// `call`: rings the socket that made `to` reachable. The caller must be identified, neither
    /// matched nor in another call; the callee neither matched nor in a call (else `busy`).
    pub fn call(&mut self, id: I, to: &str, now: Instant) -> Result<Vec<Notice<I>>, Error> {
        let me = self.peers.get(&id).ok_or(Error::UnknownSocket)?;
        if me.identity.is_none() {
            return Err(Error::NotIdentified);
        }
        if me.partner.is_some() {
            return Err(Error::AlreadyMatched);
        }
        if me.call.is_some() {
            return Err(Error::CallPending);
        }
        let callee = *self.reachable.get(to).filter(|c| **c != id).ok_or(Error::Unreachable)?;
        let them = self.peers.get(&callee).ok_or(Error::Unreachable)?;
        if them.partner.is_some() || them.call.is_some() {
            return Err(Error::Busy);
        }
        let until = now + self.ring_timeout;
        self.peers.get_mut(&id).ok_or(Error::UnknownSocket)?.call = Some(Call { other: callee, outgoing: true, until });
        self.peers.get_mut(&callee).ok_or(Error::Unreachable)?.call = Some(Call { other: id, outgoing: false, until });
        Ok(vec![Notice::Ring { to: callee, from: id }])
    }

    /// `call_answer`: the callee accepts (both leave any partner and the queue and are paired, the caller
    /// initiating) or declines (the caller is told).
    pub fn answer(&mut self, id: I, accept: bool) -> Result<Vec<Notice<I>>, Error> {
        let call = self.peers.get(&id).ok_or(Error::UnknownSocket)?.call.ok_or(Error::NoCall)?;
        if call.outgoing {
            return Err(Error::NoCall);
        }
        let caller = call.other;
        if !accept {
            return Ok(self.end_call(id, CallEnd::Declined));
        }
        for side in [id, caller] {
            if let Some(peer) = self.peers.get_mut(&side) {
                peer.call = None;
            }
        }
        let mut notices = self.leave_partner(id)?;
        notices.extend(self.leave_partner(caller)?);
        self.dequeue(id);
        self.dequeue(caller);
        self.peers.get_mut(&id).ok_or(Error::UnknownSocket)?.partner = Some(caller);
        self.peers.get_mut(&caller).ok_or(Error::UnknownSocket)?.partner = Some(id);
        self.pairs += 1;
        notices.push(Notice::Matched { to: id, partner: caller, initiator: false, common: Vec::new() });
        notices.push(Notice::Matched { to: caller, partner: id, initiator: true, common: Vec::new() });
        Ok(notices)
    }

    /// `call_cancel`: the caller hangs up before an answer (the callee is told).
    pub fn cancel_call(&mut self, id: I) -> Result<Vec<Notice<I>>, Error> {
        let call = self.peers.get(&id).ok_or(Error::UnknownSocket)?.call.ok_or(Error::NoCall)?;
        if !call.outgoing {
            return Err(Error::NoCall);
        }
        Ok(self.end_call(id, CallEnd::Canceled))
    }

    /// Ends `id`'s pending call: the other side is told `reason`, and `id` too when it timed out (a
    /// decline, a hang-up or a disconnect is known to the one who did it).
    fn end_call(&mut self, id: I, reason: CallEnd) -> Vec<Notice<I>> {
        let Some(call) = self.peers.get_mut(&id).and_then(|p| p.call.take()) else { return Vec::new() };
        if let Some(other) = self.peers.get_mut(&call.other) {
            other.call = None;
        }
        let mut notices = vec![Notice::CallEnded { to: call.other, reason }];
        if reason == CallEnd::Timeout {
            notices.push(Notice::CallEnded { to: id, reason });
        }
        notices
    }

    fn ring_timeouts(&mut self, now: Instant) -> Vec<Notice<I>> {
        let due: Vec<I> = self
            .peers
            .iter()
            .filter(|(_, p)| p.call.is_some_and(|c| c.outgoing && now >= c.until))
            .map(|(id, _)| *id)
            .collect();
        due.into_iter().flat_map(|id| self.end_call(id, CallEnd::Timeout)).collect()
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
