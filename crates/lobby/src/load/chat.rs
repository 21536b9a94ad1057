//! Honest pairs: sockets that `find` each other once and then chat at a steady pace, each message
//! carrying its sender and send time, so that the receiver times the relay. Anything an honest socket
//! receives that its partner did not send (a `signal`, a message from a third socket, `matched`
//! again) is counted as foreign; a partner leaving or a connection closing before the end as broken.
//! Runs on the current thread's `LocalSet`.

use super::{event_frame, parse_event, percentile_ms, Conn};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// How long the pairs have to connect and match.
const MATCH_WITHIN: Duration = Duration::from_secs(30);
/// How long receivers keep reading after the last message was sent (relays under load take long).
const DRAIN: Duration = Duration::from_secs(3);

/// What the honest sockets saw.
#[derive(Debug, Default)]
pub struct ChatReport {
    /// Sockets that connected and were matched (twice the pairs when all went well).
    pub matched: usize,
    /// Messages sent and received.
    pub sent: u64,
    pub received: u64,
    /// Per message received: when (since the run's start) and its relay latency, in microseconds.
    pub samples: Vec<(u64, u32)>,
    /// Events that did not come from the socket's partner.
    pub foreign: u64,
    /// Sockets whose partner left or whose connection closed before the end.
    pub broken: u64,
    /// The run's start, which `samples` count from.
    pub base: Option<Instant>,
}

impl ChatReport {
    /// Sorted latencies (µs) of the messages received in `[from, to)`.
    pub fn latencies(&self, from: Instant, to: Instant) -> Vec<u32> {
        let Some(base) = self.base else { return Vec::new() };
        let us = |t: Instant| t.saturating_duration_since(base).as_micros() as u64;
        let (from, to) = (us(from), us(to));
        let mut lat: Vec<u32> = self.samples.iter().filter(|(at, _)| *at >= from && *at < to).map(|s| s.1).collect();
        lat.sort_unstable();
        lat
    }

    /// Count, p50 and p99 (ms) of the messages received in `[from, to)`, as JSON.
    pub fn window(&self, from: Instant, to: Instant) -> Value {
        let lat = self.latencies(from, to);
        json!({ "messages": lat.len(), "p50_ms": percentile_ms(&lat, 0.5), "p99_ms": percentile_ms(&lat, 0.99),
                "max_ms": percentile_ms(&lat, 1.0) })
    }
}

/// Connects `pairs` × 2 sockets, matches them, and has each send a message every `every` until `stop`
/// is set; returns once every socket has stopped (three seconds after, to drain). `ready` is told when
/// every socket is matched (or gave up).
pub async fn run(
    addr: SocketAddr,
    source: Option<IpAddr>,
    pairs: usize,
    every: Duration,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<()>,
) -> ChatReport {
    let base = Instant::now();
    let report = Rc::new(RefCell::new(ChatReport { base: Some(base), ..ChatReport::default() }));
    let local = tokio::task::LocalSet::new();
    let (matched_tx, mut matched_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    for i in 0..pairs * 2 {
        let (report, matched_tx, stop) = (report.clone(), matched_tx.clone(), stop.clone());
        local.spawn_local(async move {
            let conn = tokio::time::timeout(MATCH_WITHIN, matched(addr, source)).await.ok().flatten();
            let _ = matched_tx.send(conn.is_some());
            if let Some(conn) = conn {
                chat(conn, i, base, every, &stop, &report).await;
            }
        });
    }
    drop(matched_tx);
    local
        .run_until(async {
            let mut answered = 0;
            while answered < pairs * 2 {
                match matched_rx.recv().await {
                    Some(ok) => {
                        answered += 1;
                        report.borrow_mut().matched += usize::from(ok);
                    }
                    None => break,
                }
            }
            let _ = ready.send(());
        })
        .await;
    local.await;
    Rc::try_unwrap(report).map(RefCell::into_inner).unwrap_or_default()
}

/// A connected socket that found a partner.
async fn matched(addr: SocketAddr, source: Option<IpAddr>) -> Option<Conn> {
    let mut conn = Conn::connect(addr, source).await.ok()?;
    conn.emit("find", json!({})).await?;
    loop {
        let (name, _) = conn.event().await?;
        if name == "matched" {
            return Some(conn);
        }
    }
}

async fn chat(conn: Conn, me: usize, base: Instant, every: Duration, stop: &AtomicBool, report: &RefCell<ChatReport>) {
    let (mut sink, mut stream) = conn.ws.split();
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let reader = async {
        let mut partner: Option<u64> = None;
        while let Some(Ok(frame)) = stream.next().await {
            let Message::Text(text) = frame else { continue };
            if text.as_str() == "2" {
                let _ = pong_tx.send(());
                continue;
            }
            let Some((name, data)) = parse_event(text.as_str()) else { continue };
            let now = base.elapsed().as_micros() as u64;
            let mut r = report.borrow_mut();
            match name.as_str() {
                "online" => {}
                "message" => {
                    let text = data["text"].as_str().unwrap_or("");
                    let (from, sent) = text.split_once(':').unwrap_or(("", ""));
                    let (Ok(from), Ok(sent)) = (from.parse::<u64>(), sent.parse::<u64>()) else {
                        r.foreign += 1;
                        continue;
                    };
                    if *partner.get_or_insert(from) != from {
                        r.foreign += 1;
                        continue;
                    }
                    r.received += 1;
                    r.samples.push((now, now.saturating_sub(sent) as u32));
                }
                "partner_left" => {
                    // at the end, the partner leaving first is expected
                    if !stop.load(Ordering::Relaxed) {
                        r.broken += 1;
                    }
                    return;
                }
                _ => r.foreign += 1,
            }
        }
        if !stop.load(Ordering::Relaxed) {
            report.borrow_mut().broken += 1;
        }
    };
    let writer = async {
        // spread the sockets' sends over the period
        let offset = every.mul_f64((me as f64 * 0.618_034).fract());
        let mut tick = tokio::time::interval_at((Instant::now() + offset).into(), every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let frame = tokio::select! {
                _ = tick.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    report.borrow_mut().sent += 1;
                    let sent = base.elapsed().as_micros();
                    event_frame("message", &json!({ "text": format!("{me}:{sent}") }))
                }
                Some(()) = pong_rx.recv() => "3".to_string(),
            };
            if sink.send(Message::text(frame)).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(DRAIN).await;
        let _ = sink.close().await;
    };
    tokio::select! {
        _ = reader => {}
        _ = async { writer.await; tokio::time::sleep(DRAIN).await } => {}
    }
}
