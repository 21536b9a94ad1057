//! tutti patch: the socket's outgoing packet queue.
//!
//! Upstream keeps a tokio `mpsc` channel (whose first block of 32 slots, ~6 KiB with this packet
//! type, is allocated with the channel whatever its capacity) and a `watch` channel for volatile
//! packets in every socket. This queue lives inline in the socket and allocates only while packets
//! wait: an idle socket costs no heap here.
//!
//! It keeps the channel's semantics: bounded (`try_send` fails with `Full` once `capacity` packets
//! wait or are reserved), one consumer at a time (the transport holding the socket's `internal_rx`
//! lock), buffered packets before the one latest volatile packet, and after `close` senders fail with
//! `Closed` while the consumer still drains what was queued.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
};

use engineioxide_core::PacketBuf;
use futures_util::task::AtomicWaker;
use tokio::sync::{Notify, mpsc::error::TrySendError};

/// A connection that packets can be written into straight from the producer's task (write-through;
/// see [`Queue::set_direct`]).
pub(crate) trait Direct: Send + Sync {
    /// Writes `packets` if the connection is idle: no task writing into it, nothing waiting to be
    /// flushed. Otherwise hands them back, to be queued.
    #[allow(clippy::result_large_err)] // hands the packets back, as try_send
    fn try_write(&self, packets: PacketBuf) -> Result<(), PacketBuf>;
}

thread_local! {
    // how many `queued_only` scopes this thread is in
    static QUEUED_ONLY: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// tutti patch: runs `f` without write-through on this thread: what its emits send is queued for
/// each connection's own task, as without the patch. For an operation whose several notices must
/// all be out before any recipient can answer (a match's `matched` to both sides, say): a direct
/// write of the first could hand the CPU to its reader, whose answer, handled on another thread,
/// could reach the second recipient before its own notice. Queued, the notices are all in place
/// within microseconds, long before any answer can come back (as before the patch).
pub fn queued_only<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            QUEUED_ONLY.with(|n| n.set(n.get() - 1));
        }
    }
    QUEUED_ONLY.with(|n| n.set(n.get() + 1));
    let _leave = Leave;
    f()
}

// on by default (see PATCHES.md)
static WRITE_THROUGH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// tutti patch: turns write-through on (the default) or off for every engine of this process.
pub fn set_write_through(on: bool) {
    WRITE_THROUGH.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn write_through_allowed() -> bool {
    WRITE_THROUGH.load(std::sync::atomic::Ordering::Relaxed) && QUEUED_ONLY.with(|n| n.get() == 0)
}

#[derive(Default)]
struct State {
    buffered: VecDeque<PacketBuf>,
    reserved: usize,
    // boxed: rarely used, and a PacketBuf is 168 bytes
    volatile: Option<Box<PacketBuf>>,
    closed: bool,
    direct: Option<Arc<dyn Direct>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("buffered", &self.buffered.len())
            .field("reserved", &self.reserved)
            .field("closed", &self.closed)
            .field("direct", &self.direct.is_some())
            .finish()
    }
}

impl State {
    fn push(&mut self, packets: PacketBuf) {
        if self.buffered.capacity() == 0 {
            // room for one: a socket usually has one packet waiting at a time (a VecDeque's
            // first growth would make room for four, 672 bytes, in every socket of a broadcast)
            self.buffered.reserve_exact(1);
        }
        self.buffered.push_back(packets);
    }

    /// Whether one more packet may be queued; with a `capacity`, only within it.
    fn admit(&self, capacity: Option<usize>) -> Result<(), TrySendError<()>> {
        if self.closed {
            return Err(TrySendError::Closed(()));
        }
        if capacity.is_some_and(|capacity| self.buffered.len() + self.reserved >= capacity) {
            return Err(TrySendError::Full(()));
        }
        Ok(())
    }
}

/// A bounded multi-producer, single-consumer queue of [`PacketBuf`]s.
#[derive(Debug)]
pub(crate) struct Queue {
    state: Mutex<State>,
    capacity: usize,
    consumer: AtomicWaker,
    closed: Notify,
    #[cfg(test)]
    direct_writes: std::sync::atomic::AtomicUsize,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::default(),
            capacity: capacity.max(1),
            consumer: AtomicWaker::new(),
            closed: Notify::new(),
            #[cfg(test)]
            direct_writes: Default::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-updated (every update is a
        // single push, pop or assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `packets` if there is room.
    #[allow(clippy::result_large_err)] // the channel's error type, which hands the packets back
    pub(crate) fn try_send(&self, packets: PacketBuf) -> Result<(), TrySendError<PacketBuf>> {
        self.send(packets, Some(self.capacity))
    }

    /// Queues `packets` even if the queue is full (used for the one NOOP packet of an upgrade).
    #[allow(clippy::result_large_err)] // as try_send
    pub(crate) fn force_send(&self, packets: PacketBuf) -> Result<(), TrySendError<PacketBuf>> {
        self.send(packets, None)
    }

    #[allow(clippy::result_large_err)] // as try_send
    fn send(
        &self,
        packets: PacketBuf,
        capacity: Option<usize>,
    ) -> Result<(), TrySendError<PacketBuf>> {
        let state = self.state();
        match state.admit(capacity) {
            Ok(()) => self.put(state, packets),
            Err(TrySendError::Closed(())) => return Err(TrySendError::Closed(packets)),
            Err(TrySendError::Full(())) => return Err(TrySendError::Full(packets)),
        }
        Ok(())
    }

    /// Written through to the connection when nothing waits before them and it is idle, else
    /// queued for the consumer. Under the state's lock, so that a packet never overtakes one queued
    /// before it: the consumer takes packets out of the queue only while it holds its connection,
    /// which a direct write needs too.
    fn put(&self, mut state: MutexGuard<'_, State>, mut packets: PacketBuf) {
        if state.buffered.is_empty()
            && state.volatile.is_none()
            && write_through_allowed()
            && let Some(direct) = &state.direct
        {
            match direct.try_write(packets) {
                Ok(()) => {
                    #[cfg(test)]
                    self.direct_writes
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
                Err(back) => packets = back,
            }
        }
        state.push(packets);
        drop(state);
        self.consumer.wake();
    }

    /// tutti patch: the connection that [`Queue::put`] may write into directly (a WebSocket
    /// session's, while it runs); `None` stops that. Once this returns, no direct write is under way.
    /// How many sends were written through (tests).
    #[cfg(test)]
    pub(crate) fn direct_writes(&self) -> usize {
        self.direct_writes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_direct(&self, direct: Option<Arc<dyn Direct>>) {
        self.state().direct = direct;
    }

    /// Replaces the waiting volatile packet, if any. False if the queue is closed.
    pub(crate) fn send_volatile(&self, packets: PacketBuf) -> bool {
        {
            let mut state = self.state();
            if state.admit(None).is_err() {
                return false;
            }
            state.volatile = Some(Box::new(packets));
        }
        self.consumer.wake();
        true
    }

    /// Holds a place for one [`PacketBuf`], released by [`Reservation::send`] or on drop.
    pub(crate) fn try_reserve(&self) -> Result<Reservation<'_>, TrySendError<()>> {
        let mut state = self.state();
        state.admit(Some(self.capacity))?;
        state.reserved += 1;
        Ok(Reservation { queue: self })
    }

    /// The next buffered packets, else the waiting volatile packet, without waiting.
    pub(crate) fn try_recv(&self) -> Option<PacketBuf> {
        let mut state = self.state();
        let next = state
            .buffered
            .pop_front()
            .or_else(|| state.volatile.take().map(|packets| *packets));
        if state.buffered.is_empty() && state.buffered.capacity() > 0 {
            // give the memory back: most sockets are idle most of the time
            state.buffered = VecDeque::new();
        }
        next
    }

    /// Makes the consumer's task the one woken by the next send, close or [`Queue::wake`].
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.consumer.register(waker);
    }

    /// Wakes the consumer without a packet (to look at its session's cancellation).
    pub(crate) fn wake(&self) {
        self.consumer.wake();
    }

    /// Like [`Queue::recv`], by polling. `Ready(None)` once closed and drained.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<PacketBuf>> {
        if let Some(packets) = self.try_recv() {
            return Poll::Ready(Some(packets));
        }
        self.consumer.register(cx.waker());
        // a packet (or the close) may have come between the first look and the registration
        match self.try_recv() {
            Some(packets) => Poll::Ready(Some(packets)),
            None if self.is_closed() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    /// Waits for the next buffered packets, else the waiting volatile packet. `None` once the queue
    /// is closed and drained.
    #[cfg(any(test, feature = "__test_harness"))]
    pub(crate) async fn recv(&self) -> Option<PacketBuf> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Refuses every later send; the consumer still receives what was queued.
    pub(crate) fn close(&self) {
        self.state().closed = true;
        self.consumer.wake();
        self.closed.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Resolves once [`Queue::close`] was called.
    pub(crate) async fn closed(&self) {
        let notified = self.closed.notified();
        tokio::pin!(notified);
        // register before looking, so that a close in between is not missed
        notified.as_mut().enable();
        if !self.is_closed() {
            notified.await;
        }
    }
}

/// A place held in a [`Queue`] for one [`PacketBuf`].
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    queue: &'a Queue,
}

impl Reservation<'_> {
    pub(crate) fn send(self, packets: PacketBuf) {
        let mut state = self.queue.state();
        state.reserved -= 1;
        // as with a channel permit used after its receiver closed, the packets are dropped
        if !state.closed {
            self.queue.put(state, packets);
        } else {
            drop(state);
            self.queue.consumer.wake();
        }
        std::mem::forget(self);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.queue.state().reserved -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engineioxide_core::Packet;
    use smallvec::smallvec;

    fn msg(text: &'static str) -> PacketBuf {
        smallvec![Packet::Message(text.into())]
    }

    fn text(packets: Option<PacketBuf>) -> String {
        match packets.as_deref() {
            Some([Packet::Message(m)]) => m.to_string(),
            other => panic!("not one message: {other:?}"),
        }
    }

    #[test]
    fn bounded_fifo_with_reservations() {
        let q = Queue::new(2);
        q.try_send(msg("a")).unwrap();
        let r = q.try_reserve().unwrap();
        assert!(matches!(q.try_send(msg("b")), Err(TrySendError::Full(_))));
        assert!(matches!(q.try_reserve(), Err(TrySendError::Full(()))));
        drop(r);
        let r = q.try_reserve().unwrap();
        r.send(msg("b"));
        assert!(matches!(q.try_send(msg("c")), Err(TrySendError::Full(_))));
        assert_eq!(text(q.try_recv()), "a");
        q.try_send(msg("c")).unwrap();
        assert_eq!(text(q.try_recv()), "b");
        assert_eq!(text(q.try_recv()), "c");
        assert!(q.try_recv().is_none());
    }

    #[test]
    fn volatile_comes_after_buffered_and_only_the_latest() {
        let q = Queue::new(8);
        assert!(q.send_volatile(msg("v1")));
        assert!(q.send_volatile(msg("v2")));
        q.try_send(msg("a")).unwrap();
        assert_eq!(text(q.try_recv()), "a");
        assert_eq!(text(q.try_recv()), "v2");
        assert!(q.try_recv().is_none());
    }

    #[test]
    fn an_idle_queue_holds_no_memory() {
        let q = Queue::new(8);
        for _ in 0..5 {
            q.try_send(msg("a")).unwrap();
        }
        while q.try_recv().is_some() {}
        assert_eq!(q.state().buffered.capacity(), 0);
    }

    #[test]
    fn close_refuses_senders_but_drains() {
        let q = Queue::new(8);
        q.try_send(msg("a")).unwrap();
        let r = q.try_reserve().unwrap();
        q.close();
        assert!(q.is_closed());
        assert!(matches!(q.try_send(msg("b")), Err(TrySendError::Closed(_))));
        assert!(matches!(q.try_reserve(), Err(TrySendError::Closed(()))));
        assert!(!q.send_volatile(msg("v")));
        r.send(msg("dropped"));
        assert_eq!(text(q.try_recv()), "a");
        assert!(q.try_recv().is_none());
        assert_eq!(q.state().reserved, 0);
    }

    #[tokio::test]
    async fn recv_waits_for_a_packet_and_ends_at_close() {
        let q = std::sync::Arc::new(Queue::new(8));
        let consumer = tokio::spawn({
            let q = q.clone();
            async move {
                let mut got = Vec::new();
                while let Some(p) = q.recv().await {
                    got.push(text(Some(p)));
                }
                got
            }
        });
        let closed = tokio::spawn({
            let q = q.clone();
            async move { q.closed().await }
        });
        tokio::task::yield_now().await;
        q.try_send(msg("a")).unwrap();
        tokio::task::yield_now().await;
        q.try_send(msg("b")).unwrap();
        q.close();
        assert_eq!(consumer.await.unwrap(), ["a", "b"]);
        closed.await.unwrap();
        q.closed().await; // already closed: resolves at once
    }
}
