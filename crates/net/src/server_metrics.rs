//! Numbers a running server publishes for `--metrics`: the traffic counters (copied from the
//! server thread a few times a second, never waited for), connected clients, recorder state, and a
//! histogram of the time each audio tick took (decode, mix, encode), and one of how long after its
//! tick started each audio datagram was handed to the kernel (what the server adds to every
//! musician's delay besides the jitter buffer). Counts only: no addresses.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tutti_jam::Stats;

/// Upper bounds of the tick time histogram, in seconds.
pub const TICK_BUCKETS: [f64; 10] =
    [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.001_333, 0.002, 0.002_667, 0.005, 0.01];

/// Upper bounds of the send delay histogram (send time − tick start, per audio datagram), in seconds.
pub const SEND_BUCKETS: [f64; 12] =
    [0.000_05, 0.000_1, 0.000_2, 0.000_3, 0.000_5, 0.000_75, 0.001, 0.001_25, 0.001_5, 0.002, 0.002_667, 0.005];

/// A histogram of durations, with `N` upper bounds.
pub struct Histogram<const N: usize> {
    bounds: [f64; N],
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    pub fn new(bounds: [f64; N]) -> Self {
        Histogram {
            bounds,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Counts `n` observations of `took`.
    pub fn observe(&self, took: Duration, n: u64) {
        let seconds = took.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|&b| seconds <= b) {
            self.buckets[i].fetch_add(n, Ordering::Relaxed);
        }
        self.count.fetch_add(n, Ordering::Relaxed);
        self.sum_ns.fetch_add(took.as_nanos() as u64 * n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, b)| {
                cumulative += b.load(Ordering::Relaxed);
                (bound, cumulative)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            count: self.count.load(Ordering::Relaxed),
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// A histogram's cumulative counts per upper bound, for rendering.
#[derive(Debug, Clone, Default)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

pub struct ServerMetrics {
    stats: Mutex<Stats>,
    clients: AtomicU64,
    recorder_state: AtomicU8,
    frames_late: AtomicU64,
    frames_lost: AtomicU64,
    ticks: Histogram<{ TICK_BUCKETS.len() }>,
    sends: Histogram<{ SEND_BUCKETS.len() }>,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        ServerMetrics {
            stats: Mutex::default(),
            clients: AtomicU64::default(),
            recorder_state: AtomicU8::default(),
            frames_late: AtomicU64::default(),
            frames_lost: AtomicU64::default(),
            ticks: Histogram::new(TICK_BUCKETS),
            sends: Histogram::new(SEND_BUCKETS),
        }
    }
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
    /// Time per audio tick.
    pub ticks: HistogramSnapshot,
    /// Send time − tick start, per audio datagram.
    pub sends: HistogramSnapshot,
}

impl ServerMetrics {
    /// Counts one audio tick that took `took`.
    pub fn observe_tick(&self, took: Duration) {
        self.ticks.observe(took, 1);
    }

    /// Counts `n` audio datagrams handed to the kernel `after` their tick started.
    pub fn observe_sends(&self, after: Duration, n: u64) {
        if n > 0 {
            self.sends.observe(after, n);
        }
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
        MetricsSnapshot {
            stats: self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            clients: self.clients.load(Ordering::Relaxed),
            recorder_state: self.recorder_state.load(Ordering::Relaxed),
            frames_late: self.frames_late.load(Ordering::Relaxed),
            frames_lost: self.frames_lost.load(Ordering::Relaxed),
            ticks: self.ticks.snapshot(),
            sends: self.sends.snapshot(),
        }
    }
}
