//! Datagrams waiting to be sent, kept back to back in one reusable buffer so that the audio path
//! queues packets without allocating. Drained by the IO shell through `poll_transmit`.

use std::collections::VecDeque;
use std::net::SocketAddr;

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    bytes: Vec<u8>,
    queue: VecDeque<(SocketAddr, usize, usize)>,
    /// Set once a datagram has been handed out: its bytes may be reused on the next push.
    handed_out: bool,
}

impl Outbox {
    pub fn push(&mut self, to: SocketAddr, datagram: &[u8]) {
        if self.queue.is_empty() && self.handed_out {
            self.bytes.clear();
            self.handed_out = false;
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(datagram);
        self.queue.push_back((to, start, datagram.len()));
    }

    pub fn pop(&mut self) -> Option<(SocketAddr, &[u8])> {
        let (to, start, len) = self.queue.pop_front()?;
        self.handed_out = true;
        Some((to, &self.bytes[start..start + len]))
    }

    /// Every waiting datagram, in order (for shells that send in batches; then `clear`).
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        self.queue.iter().map(|&(to, start, len)| (to, &self.bytes[start..start + len]))
    }

    pub fn clear(&mut self) {
        self.queue.clear();
        self.bytes.clear();
        self.handed_out = false;
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }
}
