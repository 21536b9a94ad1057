//! A client's jitter buffer (§4.6): coded frames are placed by their sequence number (or numbered on
//! arrival when the stream carries no counters) and taken out one per frame period. Missing frames
//! come out as "lost" (the decoder conceals them); too much buffered latency is trimmed; in auto
//! mode the target depth follows the observed underrun rate. Storage is sized once per stream format.

/// Smallest and largest sizes a client may ask for (JITT_BUF_SIZE 1…20).
pub const MIN_SIZE: u16 = 1;
pub const MAX_SIZE: u16 = 20;
/// Where auto mode starts (a fresh 3.9.1 server reports 6 on the first tick).
pub const AUTO_INITIAL: u16 = 6;
/// A slot's size before auto mode has reported anything (3.9.1 default).
pub const DEFAULT_SIZE: u16 = 10;

const CAPACITY: usize = 64;
/// Frames per auto-sizing decision window.
const WINDOW: u32 = 1500;

/// What one pull produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull<'a> {
    /// The next frame, in order.
    Frame(&'a [u8]),
    /// A frame that should be here is missing (lost, late or not yet arrived): conceal it.
    Lost,
    /// The buffer is still filling up after a (re)start: play silence.
    Filling,
}

/// Jitter buffer for one stream of coded frames.
#[derive(Debug)]
pub struct JitterBuffer {
    storage: Vec<u8>,
    filled: [bool; CAPACITY],
    frame_len: usize,
    /// Sequence number to play next; `None` until the first frame.
    next: Option<u8>,
    /// Highest sequence number received.
    newest: u8,
    /// Numbering for streams without counters.
    arrival: u8,
    filling: bool,
    target: u16,
    auto: bool,
    window_pulls: u32,
    window_underruns: u32,
    window_min_depth: i32,
    quiet_windows: u32,
    /// Frames that arrived after their turn, frames concealed, frames dropped to cut latency.
    pub late: u64,
    pub lost: u64,
    pub trimmed: u64,
}

impl JitterBuffer {
    /// An empty buffer for frames of `frame_len` coded bytes, in auto mode.
    pub fn new(frame_len: usize) -> Self {
        JitterBuffer {
            storage: vec![0; frame_len * CAPACITY],
            filled: [false; CAPACITY],
            frame_len,
            next: None,
            newest: 0,
            arrival: 0,
            filling: true,
            target: AUTO_INITIAL,
            auto: true,
            window_pulls: 0,
            window_underruns: 0,
            window_min_depth: i32::MAX,
            quiet_windows: 0,
            late: 0,
            lost: 0,
            trimmed: 0,
        }
    }

    /// Current target depth in frames.
    pub fn size(&self) -> u16 {
        self.target
    }

    pub fn is_auto(&self) -> bool {
        self.auto
    }

    /// A client's JITT_BUF_SIZE: 1…20 fixes the size, anything above switches auto mode on.
    pub fn set_size(&mut self, blocks: u16) {
        if blocks > MAX_SIZE {
            self.auto = true;
        } else {
            self.auto = false;
            self.target = blocks.max(MIN_SIZE);
        }
    }

    /// Forgets all frames (keeps size and mode), e.g. after a format change.
    pub fn restart(&mut self, frame_len: usize) {
        if frame_len != self.frame_len {
            self.storage = vec![0; frame_len * CAPACITY];
            self.frame_len = frame_len;
        }
        self.filled = [false; CAPACITY];
        self.next = None;
        self.filling = true;
    }

    /// Stores a frame. `sequence` is the frame's counter, or `None` for streams without counters.
    /// A frame of the wrong length is ignored (the caller checked the datagram size).
    pub fn put(&mut self, sequence: Option<u8>, coded: &[u8]) {
        if coded.len() != self.frame_len {
            return;
        }
        let seq = sequence.unwrap_or_else(|| {
            self.arrival = self.arrival.wrapping_add(1);
            self.arrival
        });
        let next = *self.next.get_or_insert(seq);
        let offset = seq.wrapping_sub(next) as i8;
        if offset < 0 {
            self.late += 1;
            return;
        }
        if offset as usize >= CAPACITY {
            // Far ahead of what we play: the stream jumped; start over from this frame.
            self.filled = [false; CAPACITY];
            self.next = Some(seq);
            self.filling = true;
        }
        if self.depth() <= 0 || (seq.wrapping_sub(self.newest) as i8) > 0 {
            self.newest = seq;
        }
        let slot = usize::from(seq) % CAPACITY;
        self.storage[slot * self.frame_len..(slot + 1) * self.frame_len].copy_from_slice(coded);
        self.filled[slot] = true;
    }

    /// Frames buffered from the next one to play up to the newest (≤ 0 when nothing is ahead).
    fn depth(&self) -> i32 {
        match self.next {
            Some(next) => i32::from(self.newest.wrapping_sub(next) as i8) + 1,
            None => 0,
        }
    }

    /// Takes the frame for this frame period.
    pub fn pull(&mut self) -> Pull<'_> {
        let Some(mut next) = self.next else {
            return Pull::Filling;
        };
        let depth = self.depth();
        if self.filling {
            if depth < i32::from(self.target) {
                return Pull::Filling;
            }
            self.filling = false;
        }
        self.observe(depth);
        if depth <= 0 {
            // Nothing has arrived for this period: conceal, and wait for the stream where it is.
            self.lost += 1;
            return Pull::Lost;
        }
        let excess = depth - i32::from(self.target) - 2;
        if excess > 0 {
            for _ in 0..excess {
                self.filled[usize::from(next) % CAPACITY] = false;
                next = next.wrapping_add(1);
            }
            self.trimmed += excess as u64;
        }
        let slot = usize::from(next) % CAPACITY;
        self.next = Some(next.wrapping_add(1));
        if std::mem::replace(&mut self.filled[slot], false) {
            Pull::Frame(&self.storage[slot * self.frame_len..(slot + 1) * self.frame_len])
        } else {
            self.lost += 1;
            Pull::Lost
        }
    }

    /// Auto sizing: grow when underruns exceed 0.5 % of a window; shrink after several windows
    /// without underruns in which the buffer never ran below two frames of surplus.
    fn observe(&mut self, depth: i32) {
        self.window_pulls += 1;
        self.window_min_depth = self.window_min_depth.min(depth);
        if depth <= 0 {
            self.window_underruns += 1;
        }
        if self.window_pulls < WINDOW {
            return;
        }
        if self.auto {
            if self.window_underruns * 200 > WINDOW {
                self.target = (self.target + 1).min(MAX_SIZE);
                self.quiet_windows = 0;
            } else if self.window_underruns == 0 && self.window_min_depth >= 2 {
                self.quiet_windows += 1;
                if self.quiet_windows >= 4 && self.target > 2 {
                    self.target -= 1;
                    self.quiet_windows = 0;
                }
            } else {
                self.quiet_windows = 0;
            }
        }
        self.window_pulls = 0;
        self.window_underruns = 0;
        self.window_min_depth = i32::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> [u8; 3] {
        [n, n, n]
    }

    fn pulled(j: &mut JitterBuffer) -> Option<u8> {
        match j.pull() {
            Pull::Frame(f) => Some(f[0]),
            _ => None,
        }
    }

    #[test]
    fn fills_to_target_then_plays_in_order() {
        let mut j = JitterBuffer::new(3);
        j.set_size(3);
        j.put(Some(10), &frame(10));
        assert_eq!(j.pull(), Pull::Filling);
        j.put(Some(12), &frame(12));
        j.put(Some(11), &frame(11));
        assert_eq!(pulled(&mut j), Some(10));
        assert_eq!(pulled(&mut j), Some(11));
        assert_eq!(pulled(&mut j), Some(12));
        assert_eq!(j.pull(), Pull::Lost, "nothing ahead: conceal");
        j.put(Some(13), &frame(13));
        assert_eq!(pulled(&mut j), Some(13), "waits for the stream instead of skipping");
    }

    #[test]
    fn gap_is_concealed_and_late_frame_dropped() {
        let mut j = JitterBuffer::new(3);
        j.set_size(1);
        j.put(Some(0), &frame(0));
        j.put(Some(2), &frame(2));
        assert_eq!(pulled(&mut j), Some(0));
        assert_eq!(j.pull(), Pull::Lost);
        j.put(Some(1), &frame(1));
        assert_eq!(j.late, 1);
        assert_eq!(pulled(&mut j), Some(2));
    }

    #[test]
    fn counters_wrap() {
        let mut j = JitterBuffer::new(3);
        j.set_size(1);
        for n in 250..=255u8 {
            j.put(Some(n), &frame(n));
        }
        for n in 0..4u8 {
            j.put(Some(n), &frame(n));
        }
        let got: Vec<_> = (0..8).filter_map(|_| pulled(&mut j)).collect();
        // 10 frames buffered with target 1: trimmed to target + 2 before playing on, across the wrap.
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(j.trimmed, 7);
    }

    #[test]
    fn streams_without_counters_are_numbered_on_arrival() {
        let mut j = JitterBuffer::new(3);
        j.set_size(2);
        j.put(None, &frame(1));
        j.put(None, &frame(2));
        assert_eq!(pulled(&mut j), Some(1));
        assert_eq!(pulled(&mut j), Some(2));
    }

    #[test]
    fn auto_mode_grows_under_jitter_and_shrinks_when_steady() {
        let mut j = JitterBuffer::new(3);
        assert!(j.is_auto());
        // Bursty arrival: 12 frames at once every 12 periods underruns a buffer of 6.
        let mut seq = 0u8;
        for _ in 0..4000 {
            for _ in 0..12 {
                j.put(Some(seq), &frame(seq));
                seq = seq.wrapping_add(1);
            }
            for _ in 0..12 {
                j.pull();
            }
        }
        let grown = j.size();
        assert!(grown > AUTO_INITIAL, "{grown}");
        // Steady one-in-one-out with a surplus that never runs down: shrinks.
        for _ in 0..10 {
            j.put(Some(seq), &frame(seq));
            seq = seq.wrapping_add(1);
        }
        for _ in 0..60_000 {
            j.put(Some(seq), &frame(seq));
            seq = seq.wrapping_add(1);
            j.pull();
        }
        assert!(j.size() < grown, "{} !< {grown}", j.size());
    }

    #[test]
    fn fixed_size_is_not_changed_by_auto() {
        let mut j = JitterBuffer::new(3);
        j.set_size(4);
        assert!(!j.is_auto());
        j.set_size(21);
        assert!(j.is_auto());
    }
}
