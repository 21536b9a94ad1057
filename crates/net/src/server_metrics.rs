//! Numbers a running server publishes for `--metrics`: the traffic counters (copied from the
//! server thread a few times a second, never waited for), connected clients, recorder state, and a
//! histogram of the time each audio tick took (decode, mix, encode). Counts only: no addresses.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tutti_jam::Stats;

/// Upper bounds of the tick time histogram, in seconds.
pub const TICK_BUCKETS: [f64; 10] =
    [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.001_333, 0.002, 0.002_667, 0.005, 0.01];

#[derive(Default)]
pub struct ServerMetrics {
    stats: Mutex<Stats>,
    clients: AtomicU64,
    recorder_state: AtomicU8,
    frames_late: AtomicU64,
    frames_lost: AtomicU64,
    tick_buckets: [AtomicU64; TICK_BUCKETS.len()],
    tick_count: AtomicU64,
    tick_sum_ns: AtomicU64,
}

/// A copy for rendering.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    pub stats: Stats,
    pub clients: u64,
    /// RECORDER_STATE value: 1 not initialised, 2 not enabled, 3 recording.
    pub recorder_state: u8,
    pub frames_late: u64,
    pub frames_lost: u64,
    /// Cumulative counts per bucket of `TICK_BUCKETS`.
    pub tick_buckets: [u64; TICK_BUCKETS.len()],
    pub tick_count: u64,
    pub tick_sum_seconds: f64,
}

impl ServerMetrics {
    /// Counts one audio tick that took `took`.
    pub fn observe_tick(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Some(i) = TICK_BUCKETS.iter().position(|&b| seconds <= b) {
            self.tick_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.tick_count.fetch_add(1, Ordering::Relaxed);
        self.tick_sum_ns.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Publishes the server's counters; skipped (not waited for) while a reader holds them.
    pub fn publish(&self, stats: &Stats, clients: usize, recorder_state: u8, late: u64, lost: u64) {
        if let Ok(mut copy) = self.stats.try_lock() {
            copy.clone_from(stats);
        }
        self.clients.store(clients as u64, Ordering::Relaxed);
        self.recorder_state.store(recorder_state, Ordering::Relaxed);
        self.frames_late.store(late, Ordering::Relaxed);
        self.frames_lost.store(lost, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut cumulative = 0;
        let mut buckets = [0; TICK_BUCKETS.len()];
        for (i, b) in self.tick_buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            buckets[i] = cumulative;
        }
        MetricsSnapshot {
            stats: self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            clients: self.clients.load(Ordering::Relaxed),
            recorder_state: self.recorder_state.load(Ordering::Relaxed),
            frames_late: self.frames_late.load(Ordering::Relaxed),
            frames_lost: self.frames_lost.load(Ordering::Relaxed),
            tick_buckets: buckets,
            tick_count: self.tick_count.load(Ordering::Relaxed),
            tick_sum_seconds: self.tick_sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}
