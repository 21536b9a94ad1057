//! Reliable delivery of connection messages with one peer (§2), as a sans-IO state machine: counters
//! per direction, one message in flight, resend every 400 ms until acknowledged, immediate ACKs,
//! duplicate detection against the last received (ID, counter), split and reassembly.
//!
//! The caller owns the socket and the clock: it feeds received frames ([`Link::handle_frame`]) and
//! timer expiries ([`Link::handle_timeout`]) with the current `Instant`, and drains datagrams to send
//! ([`Link::poll_transmit`]) and the next deadline ([`Link::poll_timeout`]).

use crate::frame::{write_frame, Frame};
use crate::message::{id, is_connection_less, Message};
use crate::split::{split, Reassembler, SplitPart};
use crate::DecodeError;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long an unacknowledged message waits before it is sent again.
pub const RESEND_INTERVAL: Duration = Duration::from_millis(400);
/// Default bound on messages waiting for the peer's ACKs.
pub const DEFAULT_MAX_QUEUE: usize = 512;

/// A connection message that arrived, was acknowledged and is new (not a duplicate); split parts
/// are delivered once, as the reassembled original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub id: u16,
    pub data: Vec<u8>,
}

impl Delivered {
    pub fn decode(&self) -> Result<Message, DecodeError> {
        Message::decode(self.id, &self.data)
    }
}

/// Why a message could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the peer has {0} unacknowledged messages waiting; not queueing more")]
    QueueFull(usize),
    #[error("ACKs are produced by the link itself and cannot be queued")]
    Ack,
    #[error("a message of {0} bytes does not fit in one frame (65,535 at most) and the peer does not split")]
    TooLong(usize),
}

#[derive(Debug)]
struct Outgoing {
    id: u16,
    cnt: u8,
    data: Vec<u8>,
    /// The ID of the message this is (a part of).
    origin: u16,
    /// Position among every message ever queued on this link (1, 2, …).
    seq: u64,
}

/// One side of the acknowledged-message protocol with one peer.
#[derive(Debug)]
pub struct Link {
    next_cnt: u8,
    queue: VecDeque<Outgoing>,
    resend_at: Option<Instant>,
    transmits: VecDeque<Vec<u8>>,
    last_received: Option<(u16, u8)>,
    peer_splits: bool,
    reassembler: Reassembler,
    max_queue: usize,
    /// Messages (parts) ever queued, and the position of the last one the peer acknowledged.
    queued: u64,
    acknowledged: u64,
}

impl Default for Link {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_QUEUE)
    }
}

impl Link {
    /// A fresh link that holds at most `max_queue` unacknowledged messages.
    pub fn new(max_queue: usize) -> Self {
        Link {
            next_cnt: 0,
            queue: VecDeque::new(),
            resend_at: None,
            transmits: VecDeque::new(),
            last_received: None,
            peer_splits: false,
            reassembler: Reassembler::default(),
            max_queue: max_queue.max(1),
            queued: 0,
            acknowledged: 0,
        }
    }

    /// Back to the state after construction: counters 0, queue and duplicate memory cleared, peer
    /// assumed not to support split messages (what a disconnect does).
    pub fn reset(&mut self) {
        *self = Self::new(self.max_queue);
    }

    /// Whether long messages to this peer may be split (learned from REQ_SPLIT_MESS_SUPPORT /
    /// SPLIT_MESS_SUPPORTED).
    pub fn set_peer_supports_split(&mut self, yes: bool) {
        self.peer_splits = yes;
    }

    /// Messages waiting for an ACK, the one in flight included.
    pub fn unacknowledged(&self) -> usize {
        self.queue.len()
    }

    /// The position of the last message queued (its last part, if split): pass it to
    /// [`Link::acknowledged_through`] later to learn whether the peer acknowledged it.
    pub fn last_queued(&self) -> u64 {
        self.queued
    }

    /// Whether the peer acknowledged the message at position `position` (from [`Link::last_queued`]).
    /// Messages are delivered in order, so this also means every message queued before it arrived (or
    /// was replaced by `send_latest`).
    pub fn acknowledged_through(&self, position: u64) -> bool {
        position <= self.acknowledged
    }

    /// Queues `message`. A connection-less message is not queued: its datagram (counter 0) is
    /// ready to send at once. A long message is split when the peer supports it.
    pub fn send(&mut self, now: Instant, message: &Message) -> Result<(), LinkError> {
        let id = message.id();
        if id == id::ACKN {
            return Err(LinkError::Ack);
        }
        let data = message.data();
        let connection_less = is_connection_less(id);
        let parts = if self.peer_splits && !connection_less { split(id, &data) } else { None };
        if parts.is_none() && data.len() > usize::from(u16::MAX) {
            return Err(LinkError::TooLong(data.len()));
        }
        if connection_less {
            let mut datagram = Vec::with_capacity(data.len() + crate::frame::OVERHEAD);
            write_frame(&mut datagram, id, 0, &data);
            self.transmits.push_back(datagram);
            return Ok(());
        }
        let needed = parts.as_ref().map_or(1, Vec::len);
        if self.queue.len() + needed > self.max_queue {
            return Err(LinkError::QueueFull(self.queue.len()));
        }
        match parts {
            Some(parts) => {
                for part in parts {
                    self.enqueue(now, id::SPECIAL_SPLIT_MESSAGE, Message::Split(part).data(), id);
                }
            }
            None => self.enqueue(now, id, data, id),
        }
        Ok(())
    }

    /// Queues `message` like `send`, first dropping queued copies of the same message type that have
    /// not been sent yet: for state where only the newest matters (the client list, which a server
    /// broadcasts on every change; 150 clients joining at once would otherwise queue 150 lists per
    /// client). The message in flight is never touched; the peer sees a gap in the counters, which
    /// the protocol allows.
    pub fn send_latest(&mut self, now: Instant, message: &Message) -> Result<(), LinkError> {
        let id = message.id();
        let mut index = 0;
        self.queue.retain(|o| {
            index += 1;
            index == 1 || o.origin != id
        });
        self.send(now, message)
    }

    fn enqueue(&mut self, now: Instant, id: u16, data: Vec<u8>, origin: u16) {
        let cnt = self.next_cnt;
        self.next_cnt = self.next_cnt.wrapping_add(1);
        self.queued += 1;
        self.queue.push_back(Outgoing { id, cnt, data, origin, seq: self.queued });
        if self.queue.len() == 1 {
            self.transmit_head(now);
        }
    }

    fn transmit_head(&mut self, now: Instant) {
        if let Some(head) = self.queue.front() {
            let mut datagram = Vec::with_capacity(head.data.len() + crate::frame::OVERHEAD);
            write_frame(&mut datagram, head.id, head.cnt, &head.data);
            self.transmits.push_back(datagram);
            self.resend_at = Some(now + RESEND_INTERVAL);
        } else {
            self.resend_at = None;
        }
    }

    /// Takes a received protocol frame from this peer (not a connection-less one: those bypass the
    /// link). Connection messages are acknowledged at once, even when invalid or unknown; the new ones
    /// are returned for the caller to decode and act on.
    pub fn handle_frame(&mut self, now: Instant, frame: &Frame<'_>) -> Option<Delivered> {
        if frame.id == id::ACKN {
            self.handle_ack(now, frame);
            return None;
        }
        if is_connection_less(frame.id) {
            return None;
        }
        let mut ack = Vec::with_capacity(11);
        write_frame(&mut ack, id::ACKN, frame.cnt, &frame.id.to_le_bytes());
        self.transmits.push_back(ack);

        if self.last_received == Some((frame.id, frame.cnt)) {
            return None;
        }
        self.last_received = Some((frame.id, frame.cnt));

        if frame.id != id::SPECIAL_SPLIT_MESSAGE {
            self.reassembler.clear();
            return Some(Delivered { id: frame.id, data: frame.data.to_vec() });
        }
        match Message::decode(frame.id, frame.data) {
            Ok(Message::Split(part)) => self.reassemble(&part),
            _ => {
                self.reassembler.clear();
                None
            }
        }
    }

    fn reassemble(&mut self, part: &SplitPart) -> Option<Delivered> {
        self.reassembler.push(part).map(|(id, data)| Delivered { id, data })
    }

    fn handle_ack(&mut self, now: Instant, frame: &Frame<'_>) {
        let Ok(Message::Ack { id: acked }) = Message::decode(id::ACKN, frame.data) else {
            return;
        };
        let matches = self.queue.front().is_some_and(|head| head.cnt == frame.cnt && head.id == acked);
        if matches {
            if let Some(head) = self.queue.pop_front() {
                self.acknowledged = head.seq;
            }
            self.transmit_head(now);
        }
    }

    /// Resends the message in flight if its resend deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.resend_at.is_some_and(|at| now >= at) {
            self.transmit_head(now);
        }
    }

    /// When [`Link::handle_timeout`] must be called next, if anything is in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.resend_at
    }

    /// The next datagram to send to the peer.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }
}
