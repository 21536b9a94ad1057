//! Where the audio tick sits against the clients' arrivals. Client audio arrives at a steady phase
//! of the tick period (each client's sound card clock); a frame that arrives just after a tick waits
//! almost a whole period for the next one, and arrivals right at the tick fall now before, now after
//! it. The server keeps a histogram of the arrivals' phases over a window of ticks; when the
//! arrivals leave part of the period empty (stragglers, under 0.4 % of them, aside), it moves the tick to a margin after the last arrival
//! before that gap — gradually, a sixty-fourth of a period per tick (the mixes' pace changes by
//! under 2 % meanwhile), through the gap where it can, so that no frame crosses the tick. With
//! arrivals all over the period (many clients at random phases) nothing moves.
//!
//! Arrival times must be when the datagrams reached the host (the UDP shell passes kernel receive
//! stamps), not when a shell that sleeps until the tick got round to reading them.
//!
//! The histogram places arrivals against when ticks are due, which is when they consume frames only
//! while the shell runs them on time. Where ticks run later than the margin (a coarse timer, a
//! stalled host, a driver that calls at its own pace), frames arriving between a tick's due time
//! and its run look as if they just missed it, and each move changes how late the ticks run: the
//! tick would chase the arrivals round the period, the mixes running a frame fast or slow on every
//! lap (buffers drained or overfilled, frames trimmed). So a window in which more than one tick in
//! 64 ran late moves nothing.

use std::time::{Duration, Instant};

/// How long before its tick the latest frame should arrive: the shell's wake-up and read time.
pub const MARGIN: Duration = Duration::from_micros(300);
/// Ticks per observation window.
const WINDOW: u32 = 256;
/// Phase histogram bins per period.
const BINS: usize = 64;

#[derive(Debug, Clone)]
pub struct TickPhase {
    /// Arrivals per phase bin (bin 0 just after a tick) in this window.
    bins: [u32; BINS],
    ticks: u32,
    /// Ticks of this window that ran more than the margin after they were due.
    late_ticks: u32,
    /// How far the ticks still have to move: earlier (negative) or later, in nanoseconds.
    slew_left: i64,
    /// Total movement so far, either way.
    pub moved: Duration,
}

impl Default for TickPhase {
    fn default() -> Self {
        TickPhase { bins: [0; BINS], ticks: 0, late_ticks: 0, slew_left: 0, moved: Duration::ZERO }
    }
}

impl TickPhase {
    /// Audio arrived at `at`; the next tick is due at `next_tick`, a `period` after the last.
    pub fn arrival(&mut self, at: Instant, next_tick: Instant, period: Duration) {
        if self.slew_left != 0 {
            return;
        }
        let p = period.as_nanos() as i64;
        let signed =
            if at >= next_tick { (at - next_tick).as_nanos() as i64 } else { -((next_tick - at).as_nanos() as i64) };
        let phase = (signed + p).rem_euclid(p);
        self.bins[(phase * BINS as i64 / p) as usize % BINS] += 1;
    }

    /// A tick due at `due` ran at `ran`; returns when the next one is due.
    pub fn next_tick(&mut self, due: Instant, ran: Instant, period: Duration) -> Instant {
        let max_step = (period / 64).as_nanos() as i64;
        let step = self.slew_left.clamp(-max_step, max_step);
        self.slew_left -= step;
        self.moved += Duration::from_nanos(step.unsigned_abs());
        if step != 0 {
            if self.slew_left == 0 {
                self.restart();
            }
        } else {
            self.ticks += 1;
            if ran.saturating_duration_since(due) > MARGIN {
                self.late_ticks += 1;
            }
            if self.ticks >= WINDOW {
                self.slew_left = self.correction(period);
                self.restart();
            }
        }
        let next = due + period;
        if step < 0 {
            next - Duration::from_nanos(step.unsigned_abs())
        } else {
            next + Duration::from_nanos(step as u64)
        }
    }

    /// Where the window says the tick should go, relative to where it is (ns; 0: stay).
    fn correction(&self, period: Duration) -> i64 {
        if self.late_ticks > self.ticks / 64 {
            // The ticks did not run when due: the phases say nothing about when frames are taken.
            return 0;
        }
        // Stragglers (a client's hiccup) do not count: a bin with at most 1/256 of the arrivals is
        // empty.
        let floor = self.bins.iter().sum::<u32>() / 256;
        let mut bins = self.bins;
        bins.iter_mut().for_each(|b| *b = if *b > floor { *b } else { 0 });
        let Some(gap) = largest_gap(&bins) else { return 0 };
        let p = period.as_nanos() as i64;
        let bin = p / BINS as i64;
        // The last arrival before the gap ends with the gap's first bin; the tick goes a margin after.
        // (Phases count from the last tick, so the tick itself sits at `p`.)
        let target = gap.start as i64 * bin + MARGIN.as_nanos() as i64;
        let shift = if bins[0] == 0 && bins[BINS - 1] == 0 {
            // The tick is in the gap: move it along the gap, crossing no arrival.
            target - p
        } else {
            // The tick is among the arrivals: whichever way is shorter.
            let later = target.rem_euclid(p);
            if later <= p / 2 {
                later
            } else {
                later - p
            }
        };
        if shift.abs() <= bin {
            0
        } else {
            shift
        }
    }

    /// Forgets the window (the tick stopped, or moved).
    pub fn restart(&mut self) {
        self.bins = [0; BINS];
        self.ticks = 0;
        self.late_ticks = 0;
    }
}

/// The longest run of empty bins, circularly: its first bin and length; `None` if no bin is empty
/// or all are.
fn largest_gap(bins: &[u32; BINS]) -> Option<std::ops::Range<usize>> {
    let occupied = bins.iter().position(|&b| b > 0)?;
    let mut best: Option<(usize, usize)> = None;
    let mut run_start = None;
    for k in 1..=BINS {
        let i = (occupied + k) % BINS;
        match (bins[i] == 0, run_start) {
            (true, None) => run_start = Some(k),
            (false, Some(start)) => {
                let len = k - start;
                if best.is_none_or(|(_, l)| len > l) {
                    best = Some(((occupied + start) % BINS, len));
                }
                run_start = None;
            }
            _ => {}
        }
    }
    best.map(|(start, len)| start..start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks for `n` periods with one arrival per period from `arrival` on (plus `spread` more,
    /// evenly over the period); returns the shortest wait of an arrival for its tick in the last
    /// period.
    fn run(phase: &mut TickPhase, tick: &mut Instant, arrival: &mut Instant, period: Duration, n: usize) -> Duration {
        let mut wait = period;
        for _ in 0..n {
            let next = phase.next_tick(*tick, *tick, period);
            wait = period;
            while *arrival < next {
                phase.arrival(*arrival, next, period);
                wait = wait.min(next - *arrival);
                *arrival += period;
            }
            *tick = next;
        }
        wait
    }

    #[test]
    fn the_tick_moves_to_just_after_the_arrivals() {
        let period = Duration::from_nanos(1_333_333);
        let mut phase = TickPhase::default();
        let mut tick = Instant::now();
        // Arrivals 0.1 ms after each tick: they wait 1.23 ms.
        let mut arrival = tick + Duration::from_micros(100);
        let before = run(&mut phase, &mut tick, &mut arrival, period, 200);
        assert!(before > Duration::from_micros(1200), "{before:?}");
        let after = run(&mut phase, &mut tick, &mut arrival, period, 2000);
        assert!(after >= MARGIN && after <= MARGIN + period / 32, "{after:?}");
        // It stays there.
        let moved = phase.moved;
        run(&mut phase, &mut tick, &mut arrival, period, 2000);
        assert_eq!(phase.moved, moved);
    }

    #[test]
    fn arrivals_right_at_the_tick_get_a_margin() {
        let period = Duration::from_nanos(2_666_666);
        let mut phase = TickPhase::default();
        let mut tick = Instant::now();
        let mut arrival = tick + Duration::from_micros(10);
        let before = run(&mut phase, &mut tick, &mut arrival, period, 200);
        assert!(before > period - Duration::from_micros(20), "{before:?}");
        let after = run(&mut phase, &mut tick, &mut arrival, period, 2000);
        assert!(after >= MARGIN && after <= MARGIN + period / 32, "{after:?}");
    }

    #[test]
    fn arrivals_all_over_the_period_move_nothing() {
        let period = Duration::from_nanos(2_666_666);
        let mut phase = TickPhase::default();
        let start = Instant::now();
        let mut tick = start;
        for _ in 0..2000 {
            let next = phase.next_tick(tick, tick, period);
            for k in 0..80 {
                phase.arrival(tick + period * k / 80, next, period);
            }
            tick = next;
        }
        assert_eq!(phase.moved, Duration::ZERO);
        assert_eq!(tick - start, period * 2000);
    }

    #[test]
    fn ticks_that_run_late_do_not_make_the_tick_chase_the_arrivals() {
        // A driver that calls only every half period (a coarse timer; the sans-IO tests' simulated
        // network), with arrivals at those calls, read before the tick: wherever the tick is due, it
        // runs at the next call, and no placement gets the margin.
        let period = Duration::from_nanos(2_666_666);
        let start = Instant::now();
        let moved = |first_due: Instant| {
            let mut phase = TickPhase::default();
            let mut due = first_due;
            for k in 1..40_000u32 {
                let now = start + period / 2 * k;
                phase.arrival(now, due, period);
                while due <= now {
                    due = phase.next_tick(due, now, period);
                }
            }
            phase.moved
        };
        // Ticks due at the calls run on time: the tick moves once (past the arrivals), then holds.
        let once = moved(start + period);
        assert!(once > Duration::ZERO && once < period / 2, "{once:?}");
        // Ticks due just after a call run almost half a period late: nothing moves.
        assert_eq!(moved(start + period + Duration::from_micros(100)), Duration::ZERO);
    }

    #[test]
    fn gaps() {
        let mut bins = [1; BINS];
        assert_eq!(largest_gap(&bins), None);
        bins[3] = 0;
        bins[10..20].fill(0);
        assert_eq!(largest_gap(&bins), Some(10..20));
        let mut bins = [0; BINS];
        bins[5] = 1;
        assert_eq!(largest_gap(&bins), Some(6..6 + BINS - 1));
    }
}
