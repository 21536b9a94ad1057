//! Load generator for the registry benchmark (bench/registry.sh): plain HTTP/1.1 keep-alive over
//! `TcpStream`, one thread, CONNS connections, loopback only, bounded in time. Reads the names and
//! addresses that `registry_fill` made (name i is `user-` and i in 7 digits, DIR/bench-addrs.txt line i
//! its address) and checks every answer: a status or body other than the expected one is an error and
//! is printed. Server CPU comes from /proc/SERVER_PID/stat over the measured window.
//!
//!   registry_load floor|name|addr|unknown ADDR DIR CONNS SECS SERVER_PID
//!       closed loop, 1 s of warm-up then SECS measured:
//!       floor    GET /nothing/<known name>   the router's JSON 404 fallback, no store access
//!       name     GET /name/<random known name>            200 with that name's record
//!       addr     GET /addr/<random known address>         200 with its name
//!       unknown  GET /name/<random well-formed unknown>   404 "name not registred" from the store
//!   registry_load rate|rate-floor ADDR DIR CONNS SECS SERVER_PID RATE
//!       open loop: name lookups (rate-floor: floor requests) at RATE/s (1 s warm-up, then SECS), each
//!       timed from its intended send time, so a stalled server shows in the latency instead of slowing
//!       the generator down
//!   registry_load register ADDR DIR CONNS SECS SERVER_PID COUNT
//!       COUNT new registrations (fresh Ed25519 keys), signed before the clock starts, POSTed closed
//!       loop until done or SECS have passed
//!
//!   registry_load warm ADDR DIR CONNS SECS SERVER_PID
//!       every known name and address looked up once, in order (fills the server's answer cache),
//!       until done or SECS have passed; not a measurement
//!
//!   registry_load store - DIR 0 SECS 0
//!       no HTTP: random `Store::record` lookups of known names straight on DIR's database from this
//!       thread (run it with the server stopped), for the cost of the SQLite lookup alone
//!
//! Prints one line `result {json}`.

use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const WARM_UP: Duration = Duration::from_secs(1);

/// One keep-alive HTTP/1.1 connection, one request at a time.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(8192) })
    }

    /// Sends `request` and reads the whole answer: its status and body.
    async fn exchange(&mut self, request: &[u8]) -> Result<(u16, &[u8]), String> {
        self.stream.write_all(request).await.map_err(|e| format!("write: {e}"))?;
        self.buf.clear();
        let mut header_end = None;
        loop {
            if header_end.is_none() {
                header_end = self.buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
            }
            if let Some(end) = header_end {
                let head = std::str::from_utf8(&self.buf[..end]).map_err(|_| "header is not UTF-8")?;
                let status = head.get(9..12).and_then(|s| s.parse().ok()).ok_or("no status")?;
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
                    })
                    .ok_or("no content-length")?;
                if self.buf.len() >= end + length {
                    return Ok((status, &self.buf[end..end + length]));
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// xorshift64*: cheap, deterministic, good enough to spread lookups.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) % n
    }
}

/// What to ask and what must come back.
struct Ask {
    request: Vec<u8>,
    status: u16,
    body: Expect,
}

enum Expect {
    Exactly(Vec<u8>),
    StartsWith(Vec<u8>),
}

impl Ask {
    fn get(path: &str, status: u16, body: Expect) -> Ask {
        let request = format!("GET {path} HTTP/1.1\r\nHost: registry\r\n\r\n").into_bytes();
        Ask { request, status, body }
    }

    fn accepts(&self, status: u16, body: &[u8]) -> bool {
        status == self.status
            && match &self.body {
                Expect::Exactly(b) => body == b.as_slice(),
                Expect::StartsWith(b) => body.starts_with(b),
            }
    }
}

fn name(i: u64) -> String {
    format!("user-{i:07}")
}

/// The request generator of a closed-loop mode.
fn asker(mode: &str, addrs: Rc<Vec<String>>) -> impl Fn(&mut Rng) -> Ask {
    let n = addrs.len() as u64;
    let mode = mode.to_owned();
    move |rng| ask_for(&mode, &addrs, rng.below(n))
}

/// The request of kind `mode` about entry `i`, with the answer it must get.
fn ask_for(mode: &str, addrs: &[String], i: u64) -> Ask {
    match mode {
        "floor" => {
            Ask::get(&format!("/nothing/{}", name(i)), 404, Expect::Exactly(br#"{"error":"not found"}"#.to_vec()))
        }
        "name" => Ask::get(
            &format!("/name/{}", name(i)),
            200,
            Expect::StartsWith(format!(r#"{{"name":"{}","addr":"{}""#, name(i), addrs[i as usize]).into_bytes()),
        ),
        "addr" => Ask::get(
            &format!("/addr/{}", addrs[i as usize]),
            200,
            Expect::Exactly(format!(r#"{{"name":"{}"}}"#, name(i)).into_bytes()),
        ),
        // same length and shape as a known name; never registered (fill names start with user-)
        _ => {
            Ask::get(&format!("/name/nope-{i:07}"), 404, Expect::Exactly(br#"{"error":"name not registred"}"#.to_vec()))
        }
    }
}

/// Answers, errors and latencies of one run.
#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    /// unexpected answers by status (0: transport error), with one example each
    unexpected: BTreeMap<u16, (u64, String)>,
    latencies_us: Vec<u32>,
}

impl Tally {
    fn answer(&mut self, ask: &Ask, result: Result<(u16, &[u8]), String>, latency: Duration) {
        match result {
            Ok((status, body)) if ask.accepts(status, body) => {
                self.ok += 1;
                self.latencies_us.push(latency.as_micros().min(u32::MAX as u128) as u32);
            }
            Ok((status, body)) => self.error(status, String::from_utf8_lossy(&body[..body.len().min(200)]).into()),
            Err(e) => self.error(0, e),
        }
    }

    fn error(&mut self, status: u16, example: String) {
        self.errors += 1;
        let entry = self.unexpected.entry(status).or_insert((0, example));
        entry.0 += 1;
    }

    fn report(mut self, secs: f64) -> serde_json::Value {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies_us.is_empty() {
                return f64::NAN;
            }
            let i = ((self.latencies_us.len() as f64 * p).ceil() as usize).clamp(1, self.latencies_us.len()) - 1;
            self.latencies_us[i] as f64 / 1000.0
        };
        let unexpected: serde_json::Map<_, _> =
            self.unexpected.iter().map(|(s, (n, ex))| (s.to_string(), json!({ "count": n, "example": ex }))).collect();
        json!({
            "ok": self.ok,
            "errors": self.errors,
            "unexpected": unexpected,
            "per_sec": (self.ok as f64 / secs).round(),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "p999_ms": pct(0.999),
            "max_ms": self.latencies_us.last().map_or(f64::NAN, |&m| m as f64 / 1000.0),
        })
    }
}

/// utime + stime of a process (or this one for 0), in clock ticks, and the tick rate.
fn cpu_ticks(pid: u32) -> (u64, u64) {
    let path = if pid == 0 { "/proc/self/stat".to_owned() } else { format!("/proc/{pid}/stat") };
    let Ok(text) = std::fs::read_to_string(path) else { return (0, 0) };
    // fields after the ")" of the command name: state is field 3, utime 14, stime 15
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| fields.get(i - 3).and_then(|f| f.parse().ok()).unwrap_or(0);
    (get(14), get(15))
}

/// CPU use over a window, in % of one core: server user, server system, load generator.
struct CpuWindow {
    pid: u32,
    at: Instant,
    server: (u64, u64),
    me: (u64, u64),
}

impl CpuWindow {
    fn start(pid: u32) -> CpuWindow {
        CpuWindow { pid, at: Instant::now(), server: cpu_ticks(pid), me: cpu_ticks(0) }
    }

    fn json(&self) -> serde_json::Value {
        let ticks = 100.0; // USER_HZ on Linux
        let secs = self.at.elapsed().as_secs_f64();
        let (su, ss) = cpu_ticks(self.pid);
        let (mu, ms) = cpu_ticks(0);
        let pct = |d: u64| (d as f64 / ticks / secs * 1000.0).round() / 10.0;
        json!({
            "server_cpu_pct": pct(su + ss - self.server.0 - self.server.1),
            "server_user_pct": pct(su - self.server.0),
            "server_system_pct": pct(ss - self.server.1),
            "loadgen_cpu_pct": pct(mu + ms - self.me.0 - self.me.1),
        })
    }
}

struct Run {
    addr: SocketAddr,
    conns: usize,
    secs: f64,
    pid: u32,
}

async fn connect_all(run: &Run) -> Vec<Conn> {
    let mut conns = Vec::with_capacity(run.conns);
    for _ in 0..run.conns {
        conns.push(Conn::open(run.addr).await.unwrap_or_else(|e| fail(&format!("connect {}: {e}", run.addr))));
    }
    conns
}

fn fail(why: &str) -> ! {
    eprintln!("registry_load: {why}");
    std::process::exit(1)
}

/// Closed loop: every connection asks again as soon as it has its answer.
async fn closed(run: &Run, mode: &str, addrs: Rc<Vec<String>>) -> serde_json::Value {
    let measuring = Rc::new(Cell::new(false));
    let stop = Rc::new(Cell::new(false));
    let tally = Rc::new(RefCell::new(Tally::default()));
    let ask = Rc::new(asker(mode, addrs));
    let mut tasks = Vec::new();
    for (c, mut conn) in connect_all(run).await.into_iter().enumerate() {
        let (measuring, stop, tally, ask) = (measuring.clone(), stop.clone(), tally.clone(), ask.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (c as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
            while !stop.get() {
                let a = ask(&mut rng);
                let sent = Instant::now();
                let result = conn.exchange(&a.request).await;
                let was_measuring = measuring.get();
                if was_measuring && !stop.get() {
                    tally.borrow_mut().answer(&a, result, sent.elapsed());
                } else if result.is_err() {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    let cpu = CpuWindow::start(run.pid);
    measuring.set(true);
    tokio::time::sleep(Duration::from_secs_f64(run.secs)).await;
    stop.set(true);
    let secs = cpu.at.elapsed().as_secs_f64();
    let cpu = cpu.json();
    for t in tasks {
        let _ = t.await;
    }
    let tally = std::mem::take(&mut *tally.borrow_mut());
    merge(json!({ "mode": mode, "conns": run.conns, "secs": secs }), [tally.report(secs), cpu])
}

/// Every name and address once, in order, over all connections: the server's answer cache filled.
async fn warm(run: &Run, addrs: Rc<Vec<String>>) -> serde_json::Value {
    let next = Rc::new(Cell::new(0u64));
    let tally = Rc::new(RefCell::new(Tally::default()));
    let deadline = Instant::now() + Duration::from_secs_f64(run.secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in connect_all(run).await {
        let (next, tally, addrs) = (next.clone(), tally.clone(), addrs.clone());
        tasks.push(tokio::task::spawn_local(async move {
            loop {
                let i = next.get();
                if i >= addrs.len() as u64 || Instant::now() > deadline {
                    break;
                }
                next.set(i + 1);
                for kind in ["name", "addr"] {
                    let a = ask_for(kind, &addrs, i);
                    let sent = Instant::now();
                    let result = conn.exchange(&a.request).await;
                    tally.borrow_mut().answer(&a, result, sent.elapsed());
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let tally = std::mem::take(&mut *tally.borrow_mut());
    merge(json!({ "mode": "warm", "conns": run.conns, "secs": secs, "entries": next.get() }), [tally.report(secs)])
}

/// Open loop at `rate` name lookups a second, handed to whichever connection is idle; latency from the
/// intended send time.
async fn open(run: &Run, mode: &str, rate: f64, addrs: Rc<Vec<String>>) -> serde_json::Value {
    struct Shared {
        backlog: VecDeque<Instant>,
        idle: Vec<usize>,
        measure_from: Instant,
        tally: Tally,
    }
    let start = Instant::now() + Duration::from_millis(50);
    let shared = Rc::new(RefCell::new(Shared {
        backlog: VecDeque::new(),
        idle: Vec::new(),
        measure_from: start + WARM_UP,
        tally: Tally::default(),
    }));
    let ask = Rc::new(asker(if mode == "rate" { "name" } else { "floor" }, addrs));
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for (c, mut conn) in connect_all(run).await.into_iter().enumerate() {
        let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
        senders.push(tx);
        shared.borrow_mut().idle.push(c);
        let (shared, ask) = (shared.clone(), ask.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (c as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut next = None;
            loop {
                let intended = match next.take() {
                    Some(t) => t,
                    None => match rx.recv().await {
                        Some(t) => t,
                        None => break,
                    },
                };
                let a = ask(&mut rng);
                let result = conn.exchange(&a.request).await;
                let mut s = shared.borrow_mut();
                if intended >= s.measure_from {
                    s.tally.answer(&a, result, intended.elapsed());
                }
                match s.backlog.pop_front() {
                    Some(t) => next = Some(t),
                    None => s.idle.push(c),
                }
            }
        }));
    }
    let total = ((WARM_UP.as_secs_f64() + run.secs) * rate) as u64;
    let measured = (run.secs * rate) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut cpu = None;
    let mut max_backlog = 0;
    let ticker = Ticker::new();
    for k in 0..total {
        let intended = start + interval * k as u32;
        if cpu.is_none() && intended >= shared.borrow().measure_from {
            cpu = Some(CpuWindow::start(run.pid));
        }
        ticker.until(intended).await;
        let mut s = shared.borrow_mut();
        match s.idle.pop() {
            Some(c) => {
                let _ = senders[c].send(intended);
            }
            None => {
                s.backlog.push_back(intended);
                max_backlog = max_backlog.max(s.backlog.len());
            }
        }
    }
    let cpu = cpu.map_or(json!({}), |c| c.json());
    let last_intended = start + interval * total as u32;
    // answers still coming in count; give the server 5 s, then what is missing is an error
    let deadline = Instant::now() + Duration::from_secs(5);
    while (shared.borrow().idle.len() < run.conns || !shared.borrow().backlog.is_empty()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained_after = last_intended.elapsed().as_secs_f64();
    drop(senders);
    let mut s = shared.borrow_mut();
    let answered = s.tally.ok + s.tally.errors;
    for _ in answered..measured {
        s.tally.error(0, "no answer within 5 s after the last request".into());
    }
    let tally = std::mem::take(&mut s.tally);
    let mut report = tally.report(run.secs);
    report["offered_per_sec"] = json!(rate);
    report["max_backlog"] = json!(max_backlog);
    report["drained_after_s"] = json!((drained_after * 1000.0).round() / 1000.0);
    merge(json!({ "mode": mode, "conns": run.conns, "secs": run.secs }), [report, cpu])
}

/// Waits for an instant to the microsecond through a timerfd (tokio's timer has 1 ms steps, and
/// spinning instead would run into the kernel's real-time throttling: 50 ms stalls every second).
struct Ticker(tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>);

impl Ticker {
    fn new() -> Ticker {
        use std::os::fd::FromRawFd;
        // SAFETY: timerfd_create has no preconditions; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            fail(&format!("timerfd_create: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and the same while registered.
        let registered = unsafe { tokio::io::unix::AsyncFd::register(fd) };
        Ticker(registered.unwrap_or_else(|e| fail(&format!("timerfd: {e}"))))
    }

    async fn until(&self, at: Instant) {
        use std::os::fd::AsRawFd;
        let Some(wait) = at.checked_duration_since(Instant::now()).filter(|w| !w.is_zero()) else { return };
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: wait.as_secs() as libc::time_t,
                tv_nsec: wait.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: a valid timerfd and a valid itimerspec; the old value is not asked for.
        if unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } < 0 {
            fail(&format!("timerfd_settime: {}", std::io::Error::last_os_error()));
        }
        loop {
            let Ok(mut ready) = self.0.readable().await else { fail("timerfd poll") };
            let mut expirations = [0u8; 8];
            // SAFETY: reads at most 8 bytes into an 8-byte buffer.
            let n = unsafe { libc::read(self.0.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
            if n == 8 {
                return;
            }
            ready.clear_ready();
        }
    }
}

/// Random lookups through the store itself, one after the other on this thread.
async fn store(dir: &str, secs: f64, addrs: Rc<Vec<String>>) -> serde_json::Value {
    let config = tutti_registry::StoreConfig::Sqlite(dir.into());
    let store = tutti_registry::Store::open(&config).await.unwrap_or_else(|e| fail(&format!("{dir}: {e}")));
    let n = addrs.len() as u64;
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut result = json!({ "mode": "store", "secs": secs });
    for kind in ["name", "addr"] {
        let names: Vec<tutti_registry::Name> =
            (0..4096).map(|_| tutti_registry::Name::parse(&name(rng.below(n))).expect("valid")).collect();
        let ids: Vec<tutti_registry::Addr> =
            (0..4096).map(|_| tutti_registry::Addr::parse(&addrs[rng.below(n) as usize]).expect("valid")).collect();
        let cpu = CpuWindow::start(0);
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut done = 0u64;
        while Instant::now() < deadline {
            for i in 0..256 {
                let k = (done as usize + i) % 4096;
                let found = if kind == "name" {
                    store.record(&names[k]).await.map(|r| r.is_some())
                } else {
                    store.name_of(&ids[k]).await.map(|r| r.is_some())
                };
                if !matches!(found, Ok(true)) {
                    fail("a known name or address was not found");
                }
            }
            done += 256;
        }
        let elapsed = cpu.at.elapsed().as_secs_f64();
        let cpu = cpu.json();
        result[format!("{kind}_per_sec")] = json!((done as f64 / elapsed).round());
        result[format!("{kind}_us_each")] = json!((elapsed * 1e7 / done as f64).round() / 10.0);
        result[format!("{kind}_cpu_pct")] = cpu["loadgen_cpu_pct"].clone();
    }
    result
}

/// Closed loop of `count` registrations, signed before the clock starts.
async fn register(run: &Run, count: u64) -> serde_json::Value {
    // a tag of its own per run, so a reused database never sees a name or key twice
    let tag = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_micros() as u64);
    let signing = Instant::now();
    let asks: Vec<Ask> = (0..count)
        .map(|i| {
            let mut secret = [0xa5u8; 32];
            secret[..8].copy_from_slice(&tag.to_le_bytes());
            secret[8..16].copy_from_slice(&i.to_le_bytes());
            let key = ed25519_dalek::SigningKey::from_bytes(&secret);
            let name = format!("reg-{:08x}-{i:07}", tag as u32);
            let body = serde_json::to_vec(&tutti_registry::sign_ed25519(&key, &name)).expect("serialises");
            let mut request = format!(
                "POST /name/{name} HTTP/1.1\r\nHost: registry\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            request.extend_from_slice(&body);
            Ask { request, status: 200, body: Expect::Exactly(br#"{"success":true}"#.to_vec()) }
        })
        .collect();
    let signing_s = signing.elapsed().as_secs_f64();
    let asks = Rc::new(asks);
    let next = Rc::new(Cell::new(0usize));
    let tally = Rc::new(RefCell::new(Tally::default()));
    let conns = connect_all(run).await;
    let cpu = CpuWindow::start(run.pid);
    let deadline = Instant::now() + Duration::from_secs_f64(run.secs);
    let mut tasks = Vec::new();
    for mut conn in conns {
        let (asks, next, tally) = (asks.clone(), next.clone(), tally.clone());
        tasks.push(tokio::task::spawn_local(async move {
            while Instant::now() < deadline {
                let i = next.get();
                let Some(a) = asks.get(i) else { break };
                next.set(i + 1);
                let sent = Instant::now();
                let result = conn.exchange(&a.request).await;
                tally.borrow_mut().answer(a, result, sent.elapsed());
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = cpu.at.elapsed().as_secs_f64();
    let cpu = cpu.json();
    let tally = std::mem::take(&mut *tally.borrow_mut());
    merge(
        json!({ "mode": "register", "conns": run.conns, "secs": secs, "signed_before": count, "signing_s": signing_s }),
        [tally.report(secs), cpu],
    )
}

fn merge<const N: usize>(mut base: serde_json::Value, parts: [serde_json::Value; N]) -> serde_json::Value {
    for part in parts {
        if let (Some(b), serde_json::Value::Object(p)) = (base.as_object_mut(), part) {
            b.extend(p);
        }
    }
    base
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        fail("usage: registry_load MODE ADDR DIR CONNS SECS SERVER_PID [RATE|COUNT] (see the file's head)");
    }
    let mode = args[0].clone();
    let run = Run {
        addr: if mode == "store" {
            SocketAddr::from(([127, 0, 0, 1], 0))
        } else {
            args[1].parse().unwrap_or_else(|_| fail("ADDR is IP:PORT"))
        },
        conns: args[3].parse().unwrap_or_else(|_| fail("CONNS is a number")),
        secs: args[4].parse().unwrap_or_else(|_| fail("SECS is a number")),
        pid: args[5].parse().unwrap_or_else(|_| fail("SERVER_PID is a number")),
    };
    if !run.addr.ip().is_loopback() {
        fail("loopback only");
    }
    let extra: f64 = args.get(6).map_or(0.0, |a| a.parse().unwrap_or_else(|_| fail("RATE or COUNT is a number")));
    let addrs = || -> Rc<Vec<String>> {
        let path = std::path::Path::new(&args[2]).join("bench-addrs.txt");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
        Rc::new(text.lines().map(str::to_owned).collect())
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let result = tokio::task::LocalSet::new().block_on(&runtime, async {
        match mode.as_str() {
            "floor" | "name" | "addr" | "unknown" => closed(&run, &mode, addrs()).await,
            "warm" => warm(&run, addrs()).await,
            "rate" | "rate-floor" => open(&run, &mode, extra, addrs()).await,
            "register" => register(&run, extra as u64).await,
            "store" => store(&args[2], run.secs, addrs()).await,
            other => fail(&format!("unknown mode {other}")),
        }
    });
    println!("result {result}");
}
