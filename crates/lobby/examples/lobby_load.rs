//! Load generator for the lobby benchmark (bench/lobby.sh): Socket.IO v5 clients over WebSockets on one
//! thread, against `tutti lobby` or the Node anchor alike (same events). Loopback only; bounded in
//! count and time. Reads the server's CPU time from /proc over its measurement window.
//!
//!   lobby_load idle  ADDR N HOLD_SECS [SERVER_PID]         N idle sockets, held HOLD_SECS
//!
//! ADDR may list several servers (`IP:PORT,IP:PORT`): sockets are spread round-robin. LOBBY_LOAD_SOURCE
//! binds the sockets to a loopback source address (127.0.0.2, …) for more ephemeral ports. The CPU
//! figure reads SERVER_PID only (0: none).
//!   lobby_load match ADDR PAIRS SECS SERVER_PID            find → matched → a message each way → next
//!   lobby_load relay ADDR PAIRS RATE SECS SERVER_PID       RATE messages/s in all between matched pairs
//!   lobby_load abuse ADDR ABUSERS PAIRS QUIET ABUSE AFTER SERVER_PID
//!                                   PAIRS honest pairs chat (a message per socket every CHAT_EVERY_MS,
//!                                   default 500) through a quiet window, ABUSERS abusive sockets for the
//!                                   next, and a window after they left (seconds each); see
//!                                   tutti_lobby::load::scenario. LOBBY_ABUSE_SOURCE: the abusers' source
//!                                   address; ABUSE_ROUNDS: abuse windows one after the other (1).
//!
//! Prints one line `result {json}`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tutti_lobby::load::scenario::{self, Scenario};
use tutti_lobby::load::{percentile_ms, rss_kib, Conn};

/// Server CPU time in microseconds from /proc: user and system (kernel) separately.
#[derive(Clone, Copy, Default)]
struct Cpu {
    user_us: u64,
    system_us: u64,
}

impl Cpu {
    fn read(pid: u32) -> Cpu {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime, in ticks of USER_HZ (100 on Linux)
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0) * 1_000_000 / 100;
        Cpu { user_us: ticks(11), system_us: ticks(12) }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu { user_us: self.user_us - before.user_us, system_us: self.system_us - before.system_us }
    }

    fn total_us(self) -> f64 {
        (self.user_us + self.system_us) as f64
    }

    /// The figures of a result line: total, user and system time, each per operation.
    fn per(self, ops: u64, op: &str, secs: u64) -> serde_json::Map<String, Value> {
        let ops = ops.max(1) as f64;
        let mut m = serde_json::Map::new();
        m.insert("server_cpu_ms".into(), json!(self.total_us() / 1000.0));
        m.insert(format!("server_cpu_us_per_{op}"), json!(self.total_us() / ops));
        m.insert(format!("server_user_us_per_{op}"), json!(self.user_us as f64 / ops));
        m.insert(format!("server_system_us_per_{op}"), json!(self.system_us as f64 / ops));
        m.insert("server_cpu_share".into(), json!(self.total_us() / (secs as f64 * 1e6)));
        m
    }
}

/// Runs the spawned loops of `local` until `end`; returns the server's CPU time from `from` to `end`.
async fn run_window(local: tokio::task::LocalSet, pid: u32, from: Instant, end: Instant) -> Cpu {
    let (mut cpu0, mut cpu1) = (Cpu::default(), Cpu::default());
    local
        .run_until(async {
            tokio::time::sleep_until(from.into()).await;
            cpu0 = Cpu::read(pid);
            tokio::time::sleep_until(end.into()).await;
            cpu1 = Cpu::read(pid);
        })
        .await;
    cpu1.since(cpu0)
}

#[derive(Default)]
struct Tally {
    matches: u64,
    messages: u64,
    latencies_us: Vec<u32>,
    errors: u64,
    /// From the first event on, window or not (to divide counts taken over a whole run by).
    matches_total: u64,
    messages_total: u64,
    /// Match mode: when each socket last received an event (a socket that stops receiving is stuck).
    last_event: Vec<Option<Instant>>,
}

impl Tally {
    fn sorted_latencies(&self) -> Vec<u32> {
        let mut lat = self.latencies_us.clone();
        lat.sort_unstable();
        lat
    }
}

/// Connects `n` sockets, round-robin over `addrs`, from the source address in `LOBBY_LOAD_SOURCE` if set.
async fn connect_many(addrs: &[SocketAddr], n: usize) -> Vec<Conn> {
    let source: Option<IpAddr> =
        std::env::var("LOBBY_LOAD_SOURCE").ok().map(|s| s.parse().expect("LOBBY_LOAD_SOURCE is an IP"));
    let mut conns = Vec::with_capacity(n);
    let mut pending =
        futures_util::stream::iter((0..n).map(|i| Conn::connect(addrs[i % addrs.len()], source))).buffer_unordered(200);
    while let Some(c) = pending.next().await {
        match c {
            Ok(c) => conns.push(c),
            Err(e) => {
                eprintln!("connect failed after {} sockets: {e}", conns.len());
                break;
            }
        }
    }
    conns
}

async fn idle(addrs: &[SocketAddr], n: usize, hold: u64, pid: Option<u32>) {
    let before = pid.map(rss_kib).unwrap_or(0);
    let start = Instant::now();
    let source: Option<IpAddr> =
        std::env::var("LOBBY_LOAD_SOURCE").ok().map(|s| s.parse().expect("LOBBY_LOAD_SOURCE is an IP"));
    // each socket answers pings from the moment it is connected (a long connect phase must not let the
    // first sockets time out), at most 200 handshakes in flight
    let connected = Rc::new(RefCell::new((0usize, 0usize)));
    let gate = Rc::new(tokio::sync::Semaphore::new(200));
    let local = tokio::task::LocalSet::new();
    for i in 0..n {
        let (addr, connected, gate) = (addrs[i % addrs.len()], connected.clone(), gate.clone());
        local.spawn_local(async move {
            let permit = gate.acquire().await.expect("semaphore open");
            let conn = match tokio::time::timeout(Duration::from_secs(20), Conn::connect(addr, source)).await {
                Ok(conn) => conn,
                Err(_) => Err("no handshake within 20 s".to_string()),
            };
            drop(permit);
            match conn {
                Ok(mut c) => {
                    connected.borrow_mut().0 += 1;
                    while c.raw().await.is_some() {}
                    connected.borrow_mut().0 -= 1;
                }
                Err(e) => {
                    let mut count = connected.borrow_mut();
                    if count.1 == 0 {
                        eprintln!("connect failed: {e}");
                    }
                    count.1 += 1;
                }
            }
        });
    }
    let (mut ok, mut failed, mut connect_secs, mut after) = (0, 0, 0.0, 0);
    local
        .run_until(async {
            while connected.borrow().0 + connected.borrow().1 < n {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            connect_secs = start.elapsed().as_secs_f64();
            (ok, failed) = *connected.borrow();
            println!("connected {ok}");
            tokio::time::sleep(Duration::from_secs(hold)).await;
            after = pid.map(rss_kib).unwrap_or(0);
            ok = connected.borrow().0; // still connected at the end
        })
        .await;
    let per = if ok > 0 { (after.saturating_sub(before)) as f64 / ok as f64 } else { 0.0 };
    println!(
        "result {}",
        json!({ "mode": "idle", "sockets": ok, "failed": failed, "connect_secs": connect_secs,
                "server_rss_before_kib": before, "server_rss_after_kib": after, "kib_per_socket": per })
    );
}

fn now_us(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}

/// The socket's next event, noted as its last sign of life; a closed connection before `end` is an
/// error (after it, the partner's loop just ended).
async fn next_event(c: &mut Conn, me: usize, end: Instant, tally: &RefCell<Tally>) -> Option<(String, Value)> {
    let event = c.event().await;
    let now = Instant::now();
    let mut t = tally.borrow_mut();
    t.last_event[me] = Some(now);
    if event.is_none() && now < end {
        t.errors += 1;
    }
    event
}

/// One socket's life in the match benchmark, until `end`.
///
/// No acks are requested, so a refused event (over the server's rate limit, for instance) goes
/// unnoticed here and leaves this socket, and its partner, waiting for good: the server's limits must
/// be far above what the loop sends (bench/lobby.sh), and `stuck` in the result counts such sockets.
async fn match_loop(
    mut c: Conn,
    me: usize,
    base: Instant,
    end: Instant,
    tally: Rc<RefCell<Tally>>,
    measure_from: Instant,
) {
    let mut need_find = true;
    while Instant::now() < end {
        if need_find {
            c.emit("find", json!({})).await;
        }
        let Some((name, data)) = next_event(&mut c, me, end, &tally).await else { return };
        if name != "matched" {
            continue;
        }
        let initiator = data["initiator"] == true;
        c.emit("message", json!({ "text": now_us(base).to_string() })).await;
        let mut got_message = false;
        loop {
            let Some((name, data)) = next_event(&mut c, me, end, &tally).await else { return };
            match name.as_str() {
                "message" => {
                    let sent: u64 = data["text"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
                    let now = Instant::now();
                    if now >= measure_from && now < end {
                        let mut t = tally.borrow_mut();
                        t.latencies_us.push((now_us(base) - sent) as u32);
                        t.messages += 1;
                    }
                    got_message = true;
                    if initiator {
                        c.emit("next", Value::Null).await;
                        let now = Instant::now();
                        let mut t = tally.borrow_mut();
                        t.matches_total += 1;
                        if now >= measure_from && now < end {
                            t.matches += 1;
                        }
                        need_find = false; // next queues again
                        break;
                    }
                }
                "partner_left" if got_message => {
                    need_find = true;
                    break;
                }
                "partner_left" => {
                    need_find = true;
                    if Instant::now() < end {
                        tally.borrow_mut().errors += 1;
                    }
                    break;
                }
                _ => {}
            }
        }
    }
}

async fn run_match(addrs: &[SocketAddr], pairs: usize, secs: u64, pid: u32) {
    let conns = connect_many(addrs, pairs * 2).await;
    assert_eq!(conns.len(), pairs * 2, "all sockets connect");
    let base = Instant::now();
    let warmup = Duration::from_secs(2);
    let measure_from = base + warmup;
    let end = measure_from + Duration::from_secs(secs);
    let tally = Rc::new(RefCell::new(Tally { last_event: vec![None; conns.len()], ..Tally::default() }));
    let local = tokio::task::LocalSet::new();
    for (i, c) in conns.into_iter().enumerate() {
        local.spawn_local(match_loop(c, i, base, end, tally.clone(), measure_from));
    }
    let cpu = run_window(local, pid, measure_from, end).await;
    let t = tally.borrow();
    let lat = t.sorted_latencies();
    // sockets that received nothing in the window's last second
    let quiet_from = end - Duration::from_secs(1).min(end - measure_from);
    let stuck = t.last_event.iter().filter(|e| e.is_none_or(|at| at < quiet_from)).count();
    let mut result = json!({ "mode": "match", "pairs": pairs, "secs": secs, "matches": t.matches,
            "matches_per_sec": t.matches as f64 / secs as f64, "messages": t.messages,
            "matches_total": t.matches_total,
            "msg_p50_ms": percentile_ms(&lat, 0.5), "msg_p99_ms": percentile_ms(&lat, 0.99), "errors": t.errors,
            "stuck": stuck });
    result.as_object_mut().expect("an object").extend(cpu.per(t.matches, "match", secs));
    println!("result {result}");
}

async fn relay_loop(
    mut c: Conn,
    base: Instant,
    end: Instant,
    every: Duration,
    tally: Rc<RefCell<Tally>>,
    from: Instant,
) {
    c.emit("find", json!({})).await;
    loop {
        let Some((name, _)) = c.event().await else { return };
        if name == "matched" {
            break;
        }
    }
    let (mut sink, mut stream) = c.ws.split();
    let reader = {
        let tally = tally.clone();
        async move {
            while let Some(Ok(m)) = stream.next().await {
                let Message::Text(t) = m else { continue };
                let t = t.as_str();
                if t == "2" {
                    continue; // pong is sent by the writer below, rarely needed in a 10 s run
                }
                if let Some(body) = t.strip_prefix("42[\"message\",") {
                    let v: Value = serde_json::from_str(body.trim_end_matches(']')).unwrap_or(Value::Null);
                    let sent: u64 = v["text"].as_str().and_then(|x| x.parse().ok()).unwrap_or(0);
                    let now = Instant::now();
                    let mut tl = tally.borrow_mut();
                    tl.messages_total += 1;
                    if now >= from && now < end {
                        tl.messages += 1;
                        tl.latencies_us.push((now_us(base) - sent) as u32);
                    }
                }
            }
        }
    };
    let writer = async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while Instant::now() < end {
            tick.tick().await;
            let args = json!(["message", { "text": now_us(base).to_string() }]);
            if sink.send(Message::text(format!("42{args}"))).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    tokio::select! { _ = reader => {}, _ = writer => {} }
}

async fn run_relay(addrs: &[SocketAddr], pairs: usize, rate: f64, secs: u64, pid: u32) {
    let conns = connect_many(addrs, pairs * 2).await;
    assert_eq!(conns.len(), pairs * 2, "all sockets connect");
    let base = Instant::now();
    let from = base + Duration::from_secs(3);
    let end = from + Duration::from_secs(secs);
    let every = Duration::from_secs_f64(pairs as f64 * 2.0 / rate);
    let tally = Rc::new(RefCell::new(Tally::default()));
    let local = tokio::task::LocalSet::new();
    for c in conns {
        local.spawn_local(relay_loop(c, base, end, every, tally.clone(), from));
    }
    let cpu = run_window(local, pid, from, end).await;
    let t = tally.borrow();
    let lat = t.sorted_latencies();
    let mut result = json!({ "mode": "relay", "pairs": pairs, "offered_per_sec": rate, "secs": secs,
            "messages": t.messages, "messages_per_sec": t.messages as f64 / secs as f64,
            "messages_total": t.messages_total,
            "msg_p50_ms": percentile_ms(&lat, 0.5), "msg_p99_ms": percentile_ms(&lat, 0.99) });
    result.as_object_mut().expect("an object").extend(cpu.per(t.messages, "message", secs));
    println!("result {result}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: lobby_load idle ADDR N HOLD_SECS [PID] | match ADDR PAIRS SECS PID | relay ADDR PAIRS RATE SECS PID \
         | abuse ADDR ABUSERS PAIRS QUIET ABUSE AFTER SERVER_PID";
    let arg = |i: usize| args.get(i).unwrap_or_else(|| panic!("{usage}")).clone();
    let addrs: Vec<SocketAddr> = arg(1)
        .split(',')
        .map(|a| a.trim_start_matches("http://").trim_end_matches('/').parse().expect("ADDR is IP:PORT[,IP:PORT…]"))
        .collect();
    assert!(addrs.iter().all(|a| a.ip().is_loopback()), "the load generator only targets loopback addresses");
    let addr = &addrs[..];
    if arg(0) == "abuse" {
        // its own threads and runtimes
        return run_abuse(&args, addrs[0]);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        match arg(0).as_str() {
            "idle" => {
                idle(addr, arg(2).parse().unwrap(), arg(3).parse().unwrap(), args.get(4).and_then(|p| p.parse().ok()))
                    .await
            }
            "match" => run_match(addr, arg(2).parse().unwrap(), arg(3).parse().unwrap(), arg(4).parse().unwrap()).await,
            "relay" => {
                run_relay(
                    addr,
                    arg(2).parse().unwrap(),
                    arg(3).parse().unwrap(),
                    arg(4).parse().unwrap(),
                    arg(5).parse().unwrap(),
                )
                .await
            }
            _ => panic!("{usage}"),
        }
    });
}

fn run_abuse(args: &[String], addr: SocketAddr) {
    let n =
        |i: usize| -> u64 { args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("abuse: argument {i}")) };
    let ip = |var: &str| std::env::var(var).ok().map(|s| s.parse::<IpAddr>().expect("an IP address"));
    let every_ms = std::env::var("CHAT_EVERY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let report = scenario::run(&Scenario {
        addr,
        honest_source: ip("LOBBY_LOAD_SOURCE"),
        abuse_source: ip("LOBBY_ABUSE_SOURCE"),
        abusers: n(2) as usize,
        pairs: n(3) as usize,
        every: Duration::from_millis(every_ms),
        quiet: Duration::from_secs(n(4)),
        abuse: Duration::from_secs(n(5)),
        after: Duration::from_secs(n(6)),
        rounds: std::env::var("ABUSE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1),
        server_pid: Some(n(7) as u32).filter(|p| *p != 0),
    });
    println!("result {}", report.json());
}
