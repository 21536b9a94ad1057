//! Abusive sockets. Each runs cycles until the end, taking the behaviours in turn:
//!
//! - `flood`: events at full speed (`message` with an ack, `typing`, `stop`, `challenge`,
//!   `reachable`), far past the rate limit;
//! - `oversized`: `signal` data of 20 KiB (above the 16 KiB limit); every eighth cycle one frame of
//!   1 MiB, far above the largest packet the transport takes;
//! - `malformed`: payloads of the wrong shape for every event; every eighth cycle a frame that is no
//!   Socket.IO packet at all;
//! - `strangers`: `signal` at full speed with no partner, addressed (`to`) to made-up socket ids;
//! - `reconnect`: connect, handshake and leave (closing, or just dropping the connection), again and
//!   again, as fast as the server answers.
//!
//! A striking cycle ends when the server cuts the socket: `cut` when its Socket.IO disconnect (`41`)
//! came first (the strike limit), `closed` when the connection just closed (the transport refused the
//! frame). One the server has not cut within [`CYCLE_LIMIT`] is `survived` and closed here.

use super::Conn;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// How long a striking cycle may last before it counts as having survived.
pub const CYCLE_LIMIT: Duration = Duration::from_secs(10);
/// Reconnections per `reconnect` cycle.
const RECONNECTS: usize = 10;
/// Frames written before each flush.
const BATCH: usize = 16;

/// The behaviours, in the order each socket takes them.
pub const BEHAVIOURS: [&str; 5] = ["flood", "oversized", "malformed", "strangers", "reconnect"];

/// What one behaviour's cycles came to.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub cycles: u64,
    /// Connections completed (Socket.IO connected).
    pub connects: u64,
    pub connect_failures: u64,
    pub frames: u64,
    /// Ended by the server's Socket.IO disconnect (the strike limit).
    pub cut: u64,
    /// Ended by the connection closing without a disconnect packet.
    pub closed: u64,
    /// Not ended by the server within [`CYCLE_LIMIT`].
    pub survived: u64,
    /// Time from connected to cut or closed, summed (ms).
    pub cut_ms: f64,
}

/// What the abusive sockets did, per behaviour (in [`BEHAVIOURS`] order).
#[derive(Debug, Default, Clone)]
pub struct AbuseReport {
    pub by: [Tally; BEHAVIOURS.len()],
}

impl Tally {
    fn add(&mut self, b: &Tally) {
        self.cycles += b.cycles;
        self.connects += b.connects;
        self.connect_failures += b.connect_failures;
        self.frames += b.frames;
        self.cut += b.cut;
        self.closed += b.closed;
        self.survived += b.survived;
        self.cut_ms += b.cut_ms;
    }
}

impl AbuseReport {
    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        self.by.iter().for_each(|t| total.add(t));
        total
    }

    /// Adds another run's tallies.
    pub fn add(&mut self, other: &AbuseReport) {
        self.by.iter_mut().zip(&other.by).for_each(|(a, b)| a.add(b));
    }

    pub fn json(&self) -> Value {
        let one = |t: &Tally| {
            let ended = (t.cut + t.closed).max(1) as f64;
            json!({ "cycles": t.cycles, "connects": t.connects, "connect_failures": t.connect_failures,
                    "frames": t.frames, "cut": t.cut, "closed": t.closed, "survived": t.survived,
                    "mean_ms_to_cut": t.cut_ms / ended })
        };
        let mut by = serde_json::Map::new();
        for (name, t) in BEHAVIOURS.iter().zip(&self.by) {
            by.insert((*name).to_string(), one(t));
        }
        json!({ "total": one(&self.total()), "by": by })
    }
}

/// Runs `sockets` abusive sockets against `addr` until `until`, then closes them all.
pub async fn run(addr: SocketAddr, source: Option<IpAddr>, sockets: usize, until: Instant) -> AbuseReport {
    let report = Rc::new(RefCell::new(AbuseReport::default()));
    let local = tokio::task::LocalSet::new();
    for i in 0..sockets {
        let report = report.clone();
        local.spawn_local(async move {
            let mut cycle = 0usize;
            while Instant::now() < until {
                let which = (i + cycle) % BEHAVIOURS.len();
                let t = tokio::time::timeout_at(until.into(), one_cycle(addr, source, which, i, cycle)).await;
                if let Ok(t) = t {
                    report.borrow_mut().by[which].add(&Tally { cycles: 1, ..t });
                    if t.connect_failures > 0 {
                        // the server refuses: try again soon, not in a tight loop
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                cycle += 1;
            }
        });
    }
    local.await;
    Rc::try_unwrap(report).map(RefCell::into_inner).unwrap_or_default()
}

async fn one_cycle(addr: SocketAddr, source: Option<IpAddr>, which: usize, me: usize, cycle: usize) -> Tally {
    let mut t = Tally::default();
    if BEHAVIOURS[which] == "reconnect" {
        for k in 0..RECONNECTS {
            match Conn::connect(addr, source).await {
                Ok(mut conn) => {
                    t.connects += 1;
                    if k % 2 == 0 {
                        let _ = conn.ws.close(None).await;
                    }
                }
                Err(_) => {
                    t.connect_failures += 1;
                    break;
                }
            }
        }
        return t;
    }
    let conn = match Conn::connect(addr, source).await {
        Ok(conn) => conn,
        Err(_) => {
            t.connect_failures += 1;
            return t;
        }
    };
    t.connects = 1;
    let connected = Instant::now();
    let frames = Frames::new(BEHAVIOURS[which], me, cycle);
    let (mut sink, mut stream) = conn.ws.split();
    // the disconnect packet first: cut by the strike limit; the connection closing: by the transport
    let ended = async {
        while let Some(Ok(frame)) = stream.next().await {
            if let Message::Text(text) = frame {
                if text.as_str() == "41" {
                    return true;
                }
            }
        }
        false
    };
    let sent = Rc::new(RefCell::new(0u64));
    let writer = {
        let sent = sent.clone();
        async move {
            let mut frames = frames;
            loop {
                for _ in 0..BATCH {
                    if sink.feed(frames.next()).await.is_err() {
                        return std::future::pending().await;
                    }
                    *sent.borrow_mut() += 1;
                }
                if sink.flush().await.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    };
    let outcome = tokio::select! {
        cut = ended => Some(cut),
        () = writer => None,
        () = tokio::time::sleep(CYCLE_LIMIT) => None,
    };
    t.frames = *sent.borrow();
    match outcome {
        Some(true) => t.cut = 1,
        Some(false) => t.closed = 1,
        None => t.survived = 1,
    }
    if outcome.is_some() {
        t.cut_ms = connected.elapsed().as_secs_f64() * 1000.0;
    }
    t
}

/// The endless frames of one striking behaviour.
struct Frames {
    behaviour: &'static str,
    n: usize,
    /// This cycle carries one frame the transport refuses outright.
    transport_breaker: bool,
    padding: String,
}

impl Frames {
    fn new(behaviour: &'static str, me: usize, cycle: usize) -> Frames {
        let transport_breaker = (me + cycle) % 8 == 7;
        let padding = if behaviour == "oversized" { "x".repeat(20 * 1024) } else { String::new() };
        Frames { behaviour, n: 0, transport_breaker, padding }
    }

    fn next(&mut self) -> Message {
        self.n += 1;
        let n = self.n;
        let text = match self.behaviour {
            "flood" => match n % 5 {
                0 => format!("42{n}[\"message\",{{\"text\":\"spam {n}\"}}]"),
                1 => "42[\"typing\",{\"on\":true}]".to_string(),
                2 => "42[\"stop\"]".to_string(),
                3 => format!("42{n}[\"challenge\"]"),
                _ => "42[\"reachable\",{\"on\":true}]".to_string(),
            },
            "oversized" if self.transport_breaker && n == 3 => "x".repeat(1024 * 1024),
            "oversized" => format!("42{n}[\"signal\",{{\"data\":\"{}\"}}]", self.padding),
            "malformed" if self.transport_breaker && n == 3 => "42[[[{\"".to_string(),
            "malformed" => match n % 6 {
                0 => "42[\"find\",5]".to_string(),
                1 => "42[\"message\",{\"text\":7}]".to_string(),
                2 => "42[\"typing\",\"yes\"]".to_string(),
                3 => format!("42{n}[\"identify\",{{\"publickey\":1}}]"),
                4 => "42[\"call\",{\"to\":\"not an id\"}]".to_string(),
                _ => "42[\"find\",{\"interests\":[1,2,3]}]".to_string(),
            },
            _ => format!(
                "42[\"signal\",{{\"to\":\"{:020x}\",\"data\":{{\"type\":\"offer\",\"sdp\":\"v=0 {n}\"}}}}]",
                (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ),
        };
        Message::text(text)
    }
}
