//! `/stream.opus` without a task or a buffer per listener: the encoder thread keeps the last few
//! seconds of pages once, and a listener is its socket and its place in those pages. Pages go out in
//! groups, one `writev` per listener per group; a socket that takes only part of a group keeps its
//! place and gets the rest with the next one. A listener whose socket takes nothing for `stall`, or
//! that falls further behind than the pages kept, is closed and counted as dropped; one whose
//! connection failed (the player left) is closed quietly. Holds no address.

use crate::audience::Listener;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{ErrorKind, IoSlice, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Slices in one `writev`: a start and a minute of pages is far more than a group.
const MAX_SLICES: usize = 64;

/// A listener on its way in: its socket (non-blocking) and its place in the count.
pub(crate) struct Joining<W> {
    pub socket: W,
    pub listener: Listener,
}

pub(crate) struct FanOut<W> {
    /// What every listener gets first: the response head and the Ogg header pages.
    start: Bytes,
    /// The last pages, `pages[0]` being page number `first`.
    pages: VecDeque<Bytes>,
    first: u64,
    /// Pages before this one were offered to every listener.
    written: u64,
    keep: usize,
    pages_per_write: u64,
    stall: Duration,
    places: Vec<Place<W>>,
    dropped: Arc<AtomicU64>,
}

struct Place<W> {
    socket: W,
    /// Bytes of `start` sent.
    start_sent: usize,
    /// The next page to send, and the bytes of it already sent.
    next: u64,
    offset: usize,
    stalled_since: Option<Instant>,
    _listener: Listener,
}

enum Outcome {
    Keep,
    /// Fell behind or stopped reading.
    Dropped,
    /// The connection failed or closed.
    Closed,
}

impl<W: Write> FanOut<W> {
    /// `keep` pages are kept for listeners that lag; a group of `pages_per_write` pages goes out at once.
    pub fn new(start: Bytes, keep: usize, pages_per_write: usize, stall: Duration, dropped: Arc<AtomicU64>) -> Self {
        FanOut {
            start,
            pages: VecDeque::with_capacity(keep + 1),
            first: 0,
            written: 0,
            keep: keep.max(1),
            pages_per_write: pages_per_write.max(1) as u64,
            stall,
            places: Vec::new(),
            dropped,
        }
    }

    /// A new listener: it gets the start, then the pages from the group now filling.
    pub fn join(&mut self, joining: Joining<W>) {
        let Joining { socket, listener } = joining;
        let place =
            Place { socket, start_sent: 0, next: self.written, offset: 0, stalled_since: None, _listener: listener };
        self.places.push(place);
    }

    #[cfg(test)]
    fn listeners(&self) -> usize {
        self.places.len()
    }

    /// A new page; a full group is written to every listener.
    pub fn push(&mut self, page: Bytes, now: Instant) {
        self.pages.push_back(page);
        if self.pages.len() > self.keep {
            self.pages.pop_front();
            self.first += 1;
        }
        let end = self.first + self.pages.len() as u64;
        if end - self.written >= self.pages_per_write {
            self.written = end;
            self.write(now);
        }
    }

    fn write(&mut self, now: Instant) {
        let FanOut { start, pages, first, stall, places, dropped, .. } = self;
        places.retain_mut(|place| match place.write(start, pages, *first, now, *stall) {
            Outcome::Keep => true,
            Outcome::Dropped => {
                dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Outcome::Closed => false,
        });
    }
}

impl<W: Write> Place<W> {
    fn write(&mut self, start: &[u8], pages: &VecDeque<Bytes>, first: u64, now: Instant, stall: Duration) -> Outcome {
        if self.next < first {
            return Outcome::Dropped;
        }
        loop {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            let mut total = 0;
            if self.start_sent < start.len() {
                slices[0] = IoSlice::new(&start[self.start_sent..]);
                total += start.len() - self.start_sent;
                count = 1;
            }
            let mut offset = self.offset;
            for page in pages.iter().skip((self.next - first) as usize) {
                if count == MAX_SLICES {
                    break;
                }
                slices[count] = IoSlice::new(&page[offset..]);
                total += page.len() - offset;
                offset = 0;
                count += 1;
            }
            if total == 0 {
                self.stalled_since = None;
                return Outcome::Keep;
            }
            match self.socket.write_vectored(&slices[..count]) {
                Ok(0) => return Outcome::Closed,
                Ok(sent) => {
                    self.advance(sent, start.len(), pages, first);
                    self.stalled_since = None;
                    if sent < total {
                        return Outcome::Keep; // the socket is full: the rest goes with the next group
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let since = *self.stalled_since.get_or_insert(now);
                    return if now.duration_since(since) >= stall { Outcome::Dropped } else { Outcome::Keep };
                }
                Err(_) => return Outcome::Closed,
            }
        }
    }

    fn advance(&mut self, mut sent: usize, start_len: usize, pages: &VecDeque<Bytes>, first: u64) {
        if self.start_sent < start_len {
            let taken = sent.min(start_len - self.start_sent);
            self.start_sent += taken;
            sent -= taken;
        }
        while sent > 0 {
            let left = pages[(self.next - first) as usize].len() - self.offset;
            if sent >= left {
                sent -= left;
                self.next += 1;
                self.offset = 0;
            } else {
                self.offset += sent;
                sent = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::Audience;
    use std::cell::RefCell;
    use std::io;
    use std::rc::Rc;

    /// A socket that takes at most `room` bytes per write (none: would block) or fails.
    #[derive(Clone, Default)]
    struct Socket {
        received: Rc<RefCell<Vec<u8>>>,
        room: Rc<RefCell<Option<usize>>>,
        broken: Rc<RefCell<bool>>,
        writes: Rc<RefCell<usize>>,
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            *self.writes.borrow_mut() += 1;
            if *self.broken.borrow() {
                return Err(io::Error::from(ErrorKind::BrokenPipe));
            }
            let mut room = self.room.borrow().unwrap_or(usize::MAX);
            if room == 0 {
                return Err(io::Error::from(ErrorKind::WouldBlock));
            }
            let mut sent = 0;
            for buf in bufs {
                let n = buf.len().min(room);
                self.received.borrow_mut().extend_from_slice(&buf[..n]);
                (sent, room) = (sent + n, room - n);
            }
            Ok(sent)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn fan_out(keep: usize, group: usize) -> (FanOut<Socket>, Arc<Audience>) {
        let audience = Arc::new(Audience::new(Bytes::new(), 10));
        let fan = FanOut::new(
            Bytes::from_static(b"START|"),
            keep,
            group,
            Duration::from_secs(3),
            audience.listeners_dropped.clone(),
        );
        (fan, audience)
    }

    fn join(fan: &mut FanOut<Socket>, audience: &Arc<Audience>) -> Socket {
        let socket = Socket::default();
        fan.join(Joining { socket: socket.clone(), listener: audience.admit().unwrap() });
        socket
    }

    fn page(n: u32) -> Bytes {
        Bytes::from(format!("<page {n}>"))
    }

    fn text(socket: &Socket) -> String {
        String::from_utf8(socket.received.borrow().clone()).unwrap()
    }

    #[test]
    fn pages_go_out_in_groups_with_one_write_each() {
        let (mut fan, audience) = fan_out(250, 3);
        let now = Instant::now();
        let a = join(&mut fan, &audience);
        fan.push(page(0), now);
        fan.push(page(1), now);
        assert_eq!(text(&a), "", "a group is not complete yet");
        fan.push(page(2), now);
        assert_eq!(text(&a), "START|<page 0><page 1><page 2>");
        assert_eq!(*a.writes.borrow(), 1, "start and three pages in one writev");
        let b = join(&mut fan, &audience);
        for n in 3..6 {
            fan.push(page(n), now);
        }
        assert_eq!(text(&b), "START|<page 3><page 4><page 5>", "a newcomer starts with the group filling");
        assert!(text(&a).ends_with("<page 2><page 3><page 4><page 5>"));
    }

    #[test]
    fn a_socket_that_takes_part_keeps_its_place_byte_for_byte() {
        let (mut fan, audience) = fan_out(250, 1);
        let now = Instant::now();
        let slow = join(&mut fan, &audience);
        let mut expected = String::from("START|");
        for n in 0..40 {
            *slow.room.borrow_mut() = Some(n as usize % 7 + 1);
            fan.push(page(n), now);
            expected.push_str(&format!("<page {n}>"));
        }
        *slow.room.borrow_mut() = None;
        fan.push(page(40), now);
        expected.push_str("<page 40>");
        assert_eq!(text(&slow), expected, "every byte once and in order");
        assert_eq!(fan.listeners(), 1);
    }

    #[test]
    fn a_listener_that_stops_reading_is_dropped_after_the_stall_others_keep_listening() {
        let (mut fan, audience) = fan_out(250, 1);
        let start = Instant::now();
        let stuck = join(&mut fan, &audience);
        let fine = join(&mut fan, &audience);
        *stuck.room.borrow_mut() = Some(0);
        fan.push(page(0), start);
        fan.push(page(1), start + Duration::from_millis(2_900));
        assert_eq!((fan.listeners(), audience.listeners.load(Ordering::Relaxed)), (2, 2), "not yet");
        fan.push(page(2), start + Duration::from_secs(3));
        assert_eq!((fan.listeners(), audience.listeners.load(Ordering::Relaxed)), (1, 1));
        assert_eq!(audience.listeners_dropped.load(Ordering::Relaxed), 1);
        assert_eq!(text(&fine), "START|<page 0><page 1><page 2>");
        drop(stuck);
    }

    #[test]
    fn a_listener_further_behind_than_the_pages_kept_is_dropped() {
        let (mut fan, audience) = fan_out(4, 1);
        let now = Instant::now();
        let slow = join(&mut fan, &audience);
        *slow.room.borrow_mut() = Some(3); // keeps making progress, but too slowly
        for n in 0..12 {
            fan.push(page(n), now);
        }
        assert_eq!(fan.listeners(), 0);
        assert_eq!(audience.listeners_dropped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_listener_that_left_is_closed_without_counting_as_dropped() {
        let (mut fan, audience) = fan_out(250, 1);
        let gone = join(&mut fan, &audience);
        *gone.broken.borrow_mut() = true;
        fan.push(page(0), Instant::now());
        assert_eq!((fan.listeners(), audience.listeners.load(Ordering::Relaxed)), (0, 0));
        assert_eq!(audience.listeners_dropped.load(Ordering::Relaxed), 0);
    }
}
