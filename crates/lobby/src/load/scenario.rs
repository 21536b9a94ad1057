//! The abuse scenario, shared by the load generator (`lobby_load abuse`, bench/lobby-abuse.sh) and the
//! abuse test: honest pairs chat on one thread; once they are matched, a quiet window measures their
//! relay latency without abuse; then abusive sockets run on a second thread for the abuse window;
//! once they have left and the server's socket count is back to the honest sockets, the server's RSS
//! is read again and a last window measures the relay after the abuse. The server's `/metrics` are
//! read before and after, for what its limits did.

use super::{abuse, chat, rss_kib};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub addr: SocketAddr,
    /// Source addresses of the honest and the abusive sockets (loopback; none: the kernel picks).
    pub honest_source: Option<IpAddr>,
    pub abuse_source: Option<IpAddr>,
    pub pairs: usize,
    pub abusers: usize,
    /// How often each honest socket sends a message.
    pub every: Duration,
    pub quiet: Duration,
    pub abuse: Duration,
    /// The window after the abusers left (and the server settled).
    pub after: Duration,
    /// Abuse windows, one after the other, each once the server settled from the one before (the
    /// latency window `during` is the first).
    pub rounds: usize,
    /// The server's PID, for its RSS.
    pub server_pid: Option<u32>,
}

/// What came of it.
#[derive(Debug)]
pub struct ScenarioReport {
    pub chat: chat::ChatReport,
    pub abuse: abuse::AbuseReport,
    /// Latency windows (JSON: messages, p50_ms, p99_ms, max_ms).
    pub quiet: Value,
    pub during: Value,
    pub after: Value,
    /// Server RSS (KiB): at the end of the quiet window, highest during the abuse, after it.
    pub rss_baseline_kib: u64,
    pub rss_peak_kib: u64,
    pub rss_after_kib: u64,
    /// With several rounds: the RSS after each (the last one is `rss_after_kib`).
    pub rss_rounds_kib: Vec<u64>,
    /// Seconds from the abusers' end until the server counted only the honest sockets (None: never).
    pub settled_secs: Option<f64>,
    /// The server's socket count when settled, or when it gave up waiting.
    pub sockets_left: Option<usize>,
    /// The server's metrics before the abuse and at the end.
    pub metrics_before: BTreeMap<String, f64>,
    pub metrics_after: BTreeMap<String, f64>,
}

impl ScenarioReport {
    /// How much a server counter grew over the run.
    pub fn grew(&self, name: &str) -> f64 {
        self.metrics_after.get(name).unwrap_or(&0.0) - self.metrics_before.get(name).unwrap_or(&0.0)
    }

    pub fn json(&self) -> Value {
        let p99 = |w: &Value| w["p99_ms"].as_f64().unwrap_or(f64::NAN);
        let counters = [
            "lobby_sockets_connected_total",
            "lobby_strikes_total",
            "lobby_sockets_cut_total",
            "lobby_connections_refused_total",
            "lobby_sockets_orphaned_total",
            "lobby_sockets_disconnected_total{reason=\"server_disconnect\"}",
            "lobby_sockets_disconnected_total{reason=\"parse_error\"}",
            "lobby_sockets_disconnected_total{reason=\"transport_close\"}",
            "lobby_sockets_disconnected_total{reason=\"transport_error\"}",
        ];
        let server: serde_json::Map<String, Value> =
            counters.iter().map(|c| ((*c).to_string(), json!(self.grew(c)))).collect();
        json!({ "mode": "abuse", "matched": self.chat.matched, "sent": self.chat.sent,
                "received": self.chat.received, "foreign": self.chat.foreign, "broken": self.chat.broken,
                "quiet": self.quiet, "during": self.during, "after": self.after,
                "p99_ratio": p99(&self.during) / p99(&self.quiet),
                "rss_baseline_kib": self.rss_baseline_kib, "rss_peak_kib": self.rss_peak_kib,
                "rss_after_kib": self.rss_after_kib, "rss_rounds_kib": self.rss_rounds_kib, "settled_secs": self.settled_secs, "sockets_left": self.sockets_left,
                "abusers": self.abuse.json(), "server": server })
    }
}

/// Runs the scenario (blocking; two threads of its own).
pub fn run(s: &Scenario) -> ScenarioReport {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let honest = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            current_thread().block_on(chat::run(s.addr, s.honest_source, s.pairs, s.every, stop, ready_tx))
        })
    };
    let _ = ready_rx.recv();
    let rss = || s.server_pid.map(rss_kib).unwrap_or(0);
    let quiet_from = Instant::now();
    std::thread::sleep(s.quiet.saturating_sub(Duration::from_secs(1)));
    let rss_baseline_kib = sample_rss(rss, Duration::from_secs(1));
    let metrics_before = metrics(s.addr);
    let abuse_from = Instant::now();
    let mut abuse_report = abuse::AbuseReport::default();
    let (mut rss_peak_kib, mut rss_rounds_kib) = (rss_baseline_kib, Vec::new());
    let (mut settled_secs, mut sockets_left) = (None, None);
    for round in 0..s.rounds.max(1) {
        if round > 0 {
            rss_rounds_kib.push(sample_rss(rss, Duration::from_secs(1)));
        }
        let until = Instant::now() + s.abuse;
        let abusers = {
            let s = s.clone();
            std::thread::spawn(move || {
                below_realtime();
                current_thread().block_on(abuse::run(s.addr, s.abuse_source, s.abusers, until))
            })
        };
        while !abusers.is_finished() {
            rss_peak_kib = rss_peak_kib.max(rss());
            std::thread::sleep(Duration::from_millis(100));
        }
        abuse_report.add(&abusers.join().unwrap_or_default());
        let abuse_to = Instant::now();
        // the server has settled when only the honest sockets are left
        settled_secs = loop {
            sockets_left = sockets(s.addr).or(sockets_left);
            if sockets_left == Some(s.pairs * 2) {
                break Some(abuse_to.elapsed().as_secs_f64());
            }
            if abuse_to.elapsed() > Duration::from_secs(30) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
    }
    let after_from = Instant::now();
    std::thread::sleep(s.after.saturating_sub(Duration::from_secs(1)));
    let rss_after_kib = sample_rss(rss, Duration::from_secs(1));
    rss_rounds_kib.push(rss_after_kib);
    let after_to = Instant::now();
    let metrics_after = metrics(s.addr);
    stop.store(true, Ordering::Relaxed);
    let chat = honest.join().unwrap_or_default();
    ScenarioReport {
        quiet: chat.window(quiet_from, abuse_from),
        during: chat.window(abuse_from, abuse_from + s.abuse),
        after: chat.window(after_from, after_to),
        chat,
        abuse: abuse_report,
        rss_baseline_kib,
        rss_peak_kib,
        rss_after_kib,
        rss_rounds_kib,
        settled_secs,
        sockets_left,
        metrics_before,
        metrics_after,
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// The median of RSS samples every 100 ms over `over`.
fn sample_rss(rss: impl Fn() -> u64, over: Duration) -> u64 {
    let end = Instant::now() + over;
    let mut samples = vec![rss()];
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        samples.push(rss());
    }
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Run under a real-time policy (`chrt -f`, as the benchmarks are), the abusive thread drops to the
/// normal policy: the honest sockets' thread (and the server) then always run first, so that the
/// latency measured is the server's, not the load generator's own queue behind the abusers.
pub fn below_realtime() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sets the calling thread's policy; the parameter outlives the call.
    unsafe {
        if libc::sched_getscheduler(0) != libc::SCHED_OTHER {
            libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
        }
    }
}

/// `GET path` over HTTP/1.0: the body, or None.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    tcp.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
}

/// The server's `/metrics`, name (with labels) → value.
pub fn metrics(addr: SocketAddr) -> BTreeMap<String, f64> {
    let text = http_get(addr, "/metrics").unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The server's socket count from `/stats`.
pub fn sockets(addr: SocketAddr) -> Option<usize> {
    let stats: Value = serde_json::from_str(&http_get(addr, "/stats")?).ok()?;
    stats["sockets"].as_u64().map(|n| n as usize)
}
