//! A client's jitter buffer (§4.6): coded frames are placed by their sequence number (or numbered on
//! arrival when the stream carries no counters) and taken out one per frame period. Missing frames
//! come out as "lost" (the decoder conceals them). Storage is sized once per stream format.
//!
//! The size a client asks for (JITT_BUF_SIZE, 1…20 blocks, or auto) is how much jitter the buffer
//! absorbs, not a delay it adds: frames are played as soon as they are due, with a margin of a
//! quarter of the size (none up to size 4, one up to 8, …). When the stream runs dry the buffer
//! conceals and waits where it is (the stream's delay grows by what the network needed). When the
//! frames held up by an isolated stall (none other within 341 ms) then arrive, together or one by
//! one, those whose turn was concealed are dropped as they arrive, so the stall costs latency only
//! while it lasts, as a lost packet would. Otherwise, once the fewest frames waiting at any
//! play-out of a window exceed the margin, the surplus is dropped; more than the size plus two
//! waiting are dropped immediately. The window is short (43 ms of OPUS64 frames) after a dry spell
//! that did not recur within 341 ms, long (341 ms) while they recur: recurring jitter (Wi-Fi power
//! save, say) is absorbed, and a steady stream is played with the least delay its jitter allows.
//! (Jamulus 3.9.1 observed with the same size keeps about half the size buffered: docs/perf.md,
//! "Jam latency".)
//! Auto mode (the Jamulus client's default, and tutti's own client) keeps the earlier behaviour: it
//! fills to its size, trims only beyond the size plus two, and the size follows the rate of frames
//! missing at their turn; on the server, a surplus its shrinking leaves is cut at a quiet frame only
//! (a steady stream in sound is never cut: a dropped frame clicks).

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
/// Frames per latency-trimming window while the stream keeps running dry (341 ms of OPUS64 frames,
/// 683 ms of OPUS): longer than recurring jitter such as Wi-Fi's power-save beacons (102.4 ms), which
/// the buffer must absorb rather than trim.
const TRIM_WINDOW: u32 = 256;
/// The same after a dry spell that does not recur (43 ms of OPUS64 frames): a one-off stall costs
/// latency only briefly.
const QUICK_TRIM_WINDOW: u32 = 32;
/// Dry spells that begin within a long trimming window of each other recur: the delay one leaves
/// is kept, so the next finds frames waiting. Further apart, the window would trim that delay before
/// the next spell, which would then be concealed all the same: each is caught up on instead (one
/// concealment per spell, where keeping it cost a second cut, at the trim, and a period of delay in
/// between).
const RECURRING_DRY: u64 = TRIM_WINDOW as u64;
/// …unless they begin this close (85 ms of OPUS64 frames): then they are one ragged stall.
const SAME_SPELL: u64 = 64;

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
    /// The size asked for (or chosen by auto mode), in frames.
    size: u16,
    auto: bool,
    trim_pulls: u32,
    trim_min_depth: i32,
    /// Play-outs so far; where the last dry spell (the stream ran dry) began, and how long after the
    /// one before (`u64::MAX`: none before); whether the last play-out found it dry.
    pulls: u64,
    dry_since: Option<u64>,
    dry_gap: u64,
    dry: bool,
    /// Play-outs of the current dry spell concealed and not yet caught up on; the play-out of the
    /// last catch-up (frames of a stall dropped when they arrived); until which play-out the frames
    /// of the last spell are dropped as they arrive (0: they are not).
    behind: i32,
    caught_up_at: Option<u64>,
    catch_up_until: u64,
    window_pulls: u32,
    window_underruns: u32,
    window_min_depth: i32,
    quiet_windows: u32,
    /// Whether the sound played last was quiet (see `set_quiet`).
    quiet: bool,
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
            size: AUTO_INITIAL,
            auto: true,
            trim_pulls: 0,
            trim_min_depth: i32::MAX,
            pulls: 0,
            dry_since: None,
            dry_gap: u64::MAX,
            dry: false,
            behind: 0,
            caught_up_at: None,
            catch_up_until: 0,
            window_pulls: 0,
            window_underruns: 0,
            window_min_depth: i32::MAX,
            quiet_windows: 0,
            quiet: true,
            late: 0,
            lost: 0,
            trimmed: 0,
        }
    }

    /// The size in frames (as asked for, or as auto mode chose it).
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Frames waiting when one is played, in steady state: the due frame plus the margin.
    fn target(&self) -> i32 {
        if self.auto {
            i32::from(self.size)
        } else {
            1 + (i32::from(self.size) - 1) / 4
        }
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
            self.size = blocks.max(MIN_SIZE);
        }
    }

    /// Says whether the sound just played was quiet. In auto mode, frames waiting beyond the size
    /// plus two (what the size's shrinking leaves in a steady stream) are cut only after a quiet
    /// frame, where the cut is not heard, unless they are more than twice that (a burst after a
    /// stall). A caller that never says is always quiet: surplus frames are cut at once.
    pub fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
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
        self.start_trim_window();
        (self.dry_since, self.dry_gap, self.dry) = (None, u64::MAX, false);
        (self.behind, self.caught_up_at, self.catch_up_until) = (0, None, 0);
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
        let mut depth = self.depth();
        if self.filling {
            if depth < self.target() {
                return Pull::Filling;
            }
            self.filling = false;
        }
        self.pulls += 1;
        if depth <= 0 {
            // Nothing has arrived for this period: conceal, and wait for the stream where it is.
            let since = self.dry_since.map_or(u64::MAX, |since| self.pulls - since);
            if !self.dry && since >= SAME_SPELL {
                self.dry_gap = since;
                self.dry_since = Some(self.pulls);
                self.behind = 0;
            }
            self.dry = true;
            self.behind += 1;
            self.observe(depth, true);
            self.lost += 1;
            return Pull::Lost;
        }
        if self.dry {
            // The spell is over: what waits from now on is measured afresh.
            self.dry = false;
            self.start_trim_window();
            self.catch_up_until = if self.isolated() { self.pulls + SAME_SPELL } else { 0 };
        }
        let catch_up = self.catch_up(depth);
        let allowance = i32::from(self.size) + 2;
        let mut over = depth - allowance;
        if self.auto && !self.quiet && over <= allowance {
            // What a shrinking size leaves waits for a quiet frame: a cut in sound clicks.
            over = 0;
        }
        let excess = over.max(self.trim_surplus(depth)).max(catch_up);
        if excess > 0 {
            for _ in 0..excess {
                self.filled[usize::from(next) % CAPACITY] = false;
                next = next.wrapping_add(1);
            }
            self.trimmed += excess as u64;
            depth -= excess;
            self.trim_min_depth = i32::MAX;
        }
        let slot = usize::from(next) % CAPACITY;
        self.next = Some(next.wrapping_add(1));
        let present = std::mem::replace(&mut self.filled[slot], false);
        self.observe(depth, !present);
        if present {
            Pull::Frame(&self.storage[slot * self.frame_len..(slot + 1) * self.frame_len])
        } else {
            self.lost += 1;
            Pull::Lost
        }
    }

    /// Whether the dry spell that just ended is caught up on: with a fixed size, if there was no
    /// catch-up in the last trimming window. A sooner one is left to the trimming windows: stalls
    /// that recur are jitter the buffer must absorb, and frames that come just after their turn again
    /// and again are the buffer's delay, not a surplus.
    fn isolated(&self) -> bool {
        !self.auto && self.caught_up_at.is_none_or(|at| self.pulls - at >= RECURRING_DRY)
    }

    /// Frames to drop before this play-out: after an isolated dry spell, those whose turn was
    /// concealed, as far as they are here beyond the target — when the spell ends, or as they arrive
    /// within the next 85 ms (frames held up by a sender that was late twice in a row come one at a
    /// time).
    fn catch_up(&mut self, depth: i32) -> i32 {
        if self.behind <= 0 || self.pulls > self.catch_up_until {
            return 0;
        }
        let frames = self.behind.min(depth - self.target()).max(0);
        if frames > 0 {
            self.behind -= frames;
            self.caught_up_at = Some(self.pulls);
        }
        frames
    }

    /// Frames to drop before this play-out: at the end of a trimming window, what the fewest
    /// frames waiting at any play-out of the window had beyond the target. The window is short
    /// unless the stream's dry spells recur (then what they leave is jitter the buffer must absorb).
    fn trim_surplus(&mut self, depth: i32) -> i32 {
        // (The fewest frames of the window include this play-out's, so the surplus is never more
        // than this play-out has beyond the target.) Auto mode fills to its size and keeps it.
        if self.auto {
            return 0;
        }
        self.trim_min_depth = self.trim_min_depth.min(depth);
        self.trim_pulls += 1;
        let window = if self.dry_gap < RECURRING_DRY { TRIM_WINDOW } else { QUICK_TRIM_WINDOW };
        if self.trim_pulls < window {
            return 0;
        }
        let surplus = (self.trim_min_depth - self.target()).max(0);
        self.start_trim_window();
        surplus
    }

    fn start_trim_window(&mut self) {
        self.trim_pulls = 0;
        self.trim_min_depth = i32::MAX;
    }

    /// Auto sizing: grow when frames missing at their turn exceed 0.5 % of a window; shrink after
    /// several windows without any in which the buffer never ran below two frames.
    fn observe(&mut self, depth: i32, missing: bool) {
        self.window_pulls += 1;
        self.window_min_depth = self.window_min_depth.min(depth);
        if missing {
            self.window_underruns += 1;
        }
        if self.window_pulls < WINDOW {
            return;
        }
        if self.auto {
            if self.window_underruns * 200 > WINDOW {
                self.size = (self.size + 1).min(MAX_SIZE);
                self.quiet_windows = 0;
            } else if self.window_underruns == 0 && self.window_min_depth >= 2 {
                self.quiet_windows += 1;
                if self.quiet_windows >= 4 && self.size > 2 {
                    self.size -= 1;
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
    fn plays_as_soon_as_due_with_a_quarter_of_the_size_as_margin() {
        let mut j = JitterBuffer::new(3);
        j.set_size(4);
        j.put(Some(10), &frame(10));
        assert_eq!(pulled(&mut j), Some(10), "size 4: no margin, play at once");
        let mut j = JitterBuffer::new(3);
        j.set_size(5);
        j.put(Some(10), &frame(10));
        assert_eq!(j.pull(), Pull::Filling, "size 5: one frame of margin");
        j.put(Some(12), &frame(12));
        j.put(Some(11), &frame(11));
        assert_eq!(pulled(&mut j), Some(10));
        assert_eq!(pulled(&mut j), Some(11));
        assert_eq!(pulled(&mut j), Some(12));
        assert_eq!(j.pull(), Pull::Lost, "nothing ahead: conceal");
        j.put(Some(13), &frame(13));
        assert_eq!(pulled(&mut j), Some(13), "waits for the stream instead of skipping");
    }

    /// Plays a steady stream (one frame in, one out) for `periods`, with a burst of `burst` extra
    /// frames first; returns the frames waiting at the last play-out (after any trimming).
    fn steady_after_burst(j: &mut JitterBuffer, seq: &mut u8, burst: usize, periods: usize) -> i32 {
        for _ in 0..burst {
            j.put(Some(*seq), &frame(*seq));
            *seq = seq.wrapping_add(1);
        }
        let mut depth = 0;
        for _ in 0..periods {
            j.put(Some(*seq), &frame(*seq));
            *seq = seq.wrapping_add(1);
            assert!(matches!(j.pull(), Pull::Frame(_) | Pull::Filling));
            depth = j.depth() + 1;
        }
        depth
    }

    #[test]
    fn a_hiccup_costs_latency_only_until_the_next_window() {
        let mut j = JitterBuffer::new(3);
        j.set_size(4);
        let mut seq = 0;
        assert_eq!(steady_after_burst(&mut j, &mut seq, 0, 10), 1, "just in time");
        // The sender stalled and caught up: three frames more than needed are waiting.
        assert_eq!(steady_after_burst(&mut j, &mut seq, 3, 10), 4);
        // Trimmed at the end of the first window whose play-outs all had the surplus.
        assert_eq!(steady_after_burst(&mut j, &mut seq, 0, 2 * TRIM_WINDOW as usize), 1, "trimmed back");
        assert_eq!(j.trimmed, 3);
        assert_eq!(j.lost, 0);
    }

    #[test]
    fn an_isolated_stall_costs_latency_only_while_it_lasts() {
        let mut j = JitterBuffer::new(3);
        j.set_size(4);
        let mut seq = 0u8;
        let mut depths = Vec::new();
        for period in 0..3000 {
            // Steady, but once the sender stalls raggedly (2 periods, one frame, 2 periods) and
            // then sends what it held at once.
            if ![1000, 1001, 1003, 1004].contains(&period) {
                let n = if period == 1005 { 5 } else { 1 };
                for _ in 0..n {
                    j.put(Some(seq), &frame(seq));
                    seq = seq.wrapping_add(1);
                }
            }
            j.pull();
            depths.push(j.depth() + 1);
        }
        assert_eq!(j.lost, 4, "the stall is concealed");
        assert_eq!(depths[1002], 1, "the frame between its two halves plays");
        assert!(depths[1005..].iter().all(|&d| d == 1), "the frames it held are dropped as they arrive");
        assert_eq!(j.trimmed, 4);
    }

    /// Plays 3,000 periods of a steady stream in which the sender stalls for 3 periods at each of
    /// `stalls` and sends what it held at once when the stall ends; the frames waiting after each
    /// play-out.
    fn stalled_at(j: &mut JitterBuffer, stalls: &[usize]) -> Vec<i32> {
        let mut seq = 0u8;
        let mut depths = Vec::new();
        for period in 0..3000 {
            if !stalls.iter().any(|&s| (s..s + 3).contains(&period)) {
                let n = if stalls.iter().any(|&s| period == s + 3) { 4 } else { 1 };
                for _ in 0..n {
                    j.put(Some(seq), &frame(seq));
                    seq = seq.wrapping_add(1);
                }
            }
            j.pull();
            depths.push(j.depth() + 1);
        }
        depths
    }

    #[test]
    fn stalls_further_apart_than_a_trimming_window_are_each_caught_up_on() {
        // 500 periods (667 ms of OPUS64 frames) apart: a sender hiccuping about once a second.
        let mut j = JitterBuffer::new(3);
        j.set_size(4);
        let depths = stalled_at(&mut j, &[1000, 1500, 2000]);
        assert_eq!((j.lost, j.trimmed), (9, 9), "each stall concealed, and its frames dropped as they arrive");
        assert!(depths[1003..].iter().all(|&d| d == 1), "no stall leaves any delay behind");
    }

    #[test]
    fn a_second_stall_within_a_trimming_window_is_absorbed_for_a_window() {
        let mut j = JitterBuffer::new(3);
        j.set_size(4);
        let depths = stalled_at(&mut j, &[1000, 1200]);
        assert_eq!((j.lost, j.trimmed), (6, 6));
        assert_eq!(depths[1003], 1, "the first is caught up on at once");
        assert_eq!(depths[1210], 4, "the second (stalls recur) is absorbed…");
        assert!(depths[1203 + TRIM_WINDOW as usize + 1..].iter().all(|&d| d == 1), "…for one window");
    }

    /// Plays frames 0…255 of a fixed-size-4 buffer, one per period; those for which `late` holds
    /// arrive just after their turn instead of just before. The frames waiting after each play-out.
    fn played(j: &mut JitterBuffer, late: impl Fn(u8) -> bool) -> Vec<i32> {
        j.set_size(4);
        let mut depths = Vec::new();
        for seq in 0..=255u8 {
            if late(seq) {
                j.pull();
                j.put(Some(seq), &frame(seq));
            } else {
                j.put(Some(seq), &frame(seq));
                j.pull();
            }
            depths.push(j.depth() + 1);
        }
        depths
    }

    #[test]
    fn frames_a_late_sender_holds_up_are_dropped_also_when_they_come_one_by_one() {
        // The sender wakes late twice in a row: frame 100 comes just after its turn, frame 101 just
        // after the next; from 102 on they are in time again.
        let mut j = JitterBuffer::new(3);
        let depths = played(&mut j, |seq| seq == 100 || seq == 101);
        assert_eq!((j.lost, j.trimmed), (1, 1), "the one concealment stands in for the frame dropped");
        assert!(depths[103..].iter().all(|&d| d == 1), "no delay is left behind: {:?}", &depths[98..110]);
    }

    #[test]
    fn frames_that_arrive_just_after_their_turn_keep_playing_one_period_later() {
        // From frame 100 on the tick reads just before this client's frames arrive: one is
        // concealed, then the stream plays one period behind, with nothing to catch up on.
        let mut j = JitterBuffer::new(3);
        let depths = played(&mut j, |seq| seq >= 100);
        assert_eq!((j.lost, j.trimmed), (1, 0));
        // (counted after each late frame is put: the one just put waits for the next play-out)
        assert!(depths[101..].iter().all(|&d| d == 2), "one period behind, steadily: {:?}", &depths[98..110]);
    }

    #[test]
    fn jitter_within_a_window_is_absorbed_not_trimmed() {
        let mut j = JitterBuffer::new(3);
        j.set_size(4);
        let mut seq = 0u8;
        // Every 8th period the frame comes one period late (together with the next one).
        for period in 0..4000 {
            if period % 8 != 3 {
                let n = if period % 8 == 4 { 2 } else { 1 };
                for _ in 0..n {
                    j.put(Some(seq), &frame(seq));
                    seq = seq.wrapping_add(1);
                }
            }
            j.pull();
        }
        // The first late frame is taken for an isolated stall and caught up on (dropped when it
        // arrives); from the second on, the buffer holds what the jitter needs.
        assert_eq!(j.lost, 2, "two concealments, then none");
        assert_eq!(j.trimmed, 1);
    }

    #[test]
    fn wifi_power_save_bursts_are_absorbed_not_trimmed() {
        // A phone on Wi-Fi in power-save mode gets its frames every beacon (102.4 ms, 77 OPUS64
        // periods): 4 periods held back, then sent together. A fixed size of 4 absorbs it once the
        // second dry spell shows that they recur (the first is taken for a one-off and trimmed).
        let mut j = JitterBuffer::new(3);
        j.set_size(4);
        let mut seq = 0u8;
        let mut held = 0;
        let mut settled = (0, 0);
        for period in 0..20_000 {
            if period % 77 < 4 {
                held += 1;
            } else {
                for _ in 0..=held {
                    j.put(Some(seq), &frame(seq));
                    seq = seq.wrapping_add(1);
                }
                held = 0;
            }
            j.pull();
            if period == 1000 {
                assert!(j.lost <= 8, "only the first two bursts are concealed: {} lost", j.lost);
                settled = (j.lost, j.trimmed);
            }
        }
        assert_eq!((j.lost, j.trimmed), settled, "then every burst is absorbed: nothing lost, nothing trimmed");
    }

    #[test]
    fn the_size_caps_what_waits() {
        let mut j = JitterBuffer::new(3);
        j.set_size(2);
        let mut seq = 0;
        steady_after_burst(&mut j, &mut seq, 0, 3);
        assert_eq!(steady_after_burst(&mut j, &mut seq, 8, 1), 4, "size + 2 at most");
        assert_eq!(j.trimmed, 5);
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
    fn auto_mode_cuts_what_shrinking_leaves_only_where_it_is_quiet() {
        let mut j = JitterBuffer::new(3);
        let mut seq = 0u8;
        let mut played = Vec::new();
        for _ in 0..20 * WINDOW {
            j.put(Some(seq), &frame(seq));
            seq = seq.wrapping_add(1);
            j.set_quiet(false);
            played.extend(pulled(&mut j));
        }
        assert!(j.size() <= 3, "a steady stream: the size shrinks ({})", j.size());
        let expected: Vec<u8> = (0..played.len()).map(|i| i as u8).collect();
        assert_eq!(played, expected, "every frame of a steady stream in sound is played");
        assert_eq!((j.trimmed, j.lost), (0, 0));
        let waiting = j.depth();
        assert!(waiting > i32::from(j.size()) + 2, "{waiting} frames wait for a quiet moment");
        j.set_quiet(true);
        j.put(Some(seq), &frame(seq));
        assert!(pulled(&mut j).is_some());
        assert_eq!(j.depth() + 1, i32::from(j.size()) + 2, "cut where it is quiet");
        // A burst far beyond the size (a stall's backlog) is cut at once, quiet or not.
        for _ in 0..3 * usize::from(j.size()) + 8 {
            seq = seq.wrapping_add(1);
            j.put(Some(seq), &frame(seq));
        }
        j.set_quiet(false);
        assert!(pulled(&mut j).is_some());
        assert_eq!(j.depth() + 1, i32::from(j.size()) + 2);
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
