//! The lobby under abuse (the full 1,000 against 100 is bench/lobby-abuse.sh; here modest counts for two
//! cores): abusive sockets (events at full speed, oversized and malformed packets, `signal` to
//! strangers, reconnect storms; `tutti_lobby::load::abuse`) against honest pairs chatting. The abusers
//! are cut by the strike limit (the server's `/metrics` count them), the honest pairs keep relaying
//! every message (their p99 against the same run's without abuse is printed, and asserted with
//! `TUTTI_ABUSE_P99=1`: see `check_latency`), nothing foreign reaches them, the server forgets every
//! abusive socket, and its RSS comes back to its baseline once the abusers have left. Scaled out over Redis,
//! no key about anyone stays once everyone has left.
//!
//! At the open-files limit (lowered with `prlimit` to 128 here): new connections are refused at once
//! with a 503 (not left hanging in the kernel's queue), without the accept loop spinning; the
//! connections already open keep working; and new ones are accepted again once some have left.

mod lobby_support;

use lobby_support::{Lobby, Redis};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tutti_lobby::load::scenario::{self, Scenario, ScenarioReport};
use tutti_lobby::load::{abuse, Conn};

/// The lobby's flags that turn the pace per client address off.
const NO_ADDRESS_PACE: [&str; 2] = ["--accept-rate-per-address", "0"];

/// One scenario at a time: each takes both cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The RSS tolerance after the abuse: what stays live (the maps' and buffers' capacity at their peak,
/// about 1 MiB) and what the allocator keeps for reuse. With jemalloc handing freed pages back within
/// about a second the debug build measured +1.3-2.0 MiB on 28 MiB (glibc's allocator kept +4-8 MiB);
/// a leak of whole connections would be tens of MiB.
const RSS_TOLERANCE_KIB: u64 = 6 * 1024;

/// A p99 within twice the quiet one; below 2 ms the scheduler's own jitter on a shared two-core machine
/// decides, so the bound is never under 2 ms.
fn p99_bound(quiet_p99_ms: f64) -> f64 {
    (2.0 * quiet_p99_ms).max(2.0)
}

fn check(report: &ScenarioReport, pairs: usize, abusers: usize) {
    let r = report;
    eprintln!("{}", serde_json::to_string_pretty(&r.json()).unwrap());
    // the honest pairs: all matched, every message relayed once, nothing foreign, no pair broken
    assert_eq!(r.chat.matched, pairs * 2, "every honest socket was matched");
    assert_eq!(r.chat.foreign, 0, "an honest socket received something its partner did not send");
    assert_eq!(r.chat.broken, 0, "an honest pair was broken");
    assert_eq!(r.chat.received, r.chat.sent, "honest messages were lost");
    assert!(r.during["messages"].as_u64().unwrap() > 0, "no honest message during the abuse");
    // the abusers: they really abused, and every striking socket was cut by the server
    let total = r.abuse.total();
    assert!(total.connects as usize > abusers, "the abusers did not reconnect: {total:?}");
    assert_eq!(total.survived, 0, "an abusive socket was not cut within {:?}", abuse::CYCLE_LIMIT);
    for (name, t) in abuse::BEHAVIOURS.iter().zip(&r.abuse.by) {
        assert!(t.cycles > 0, "{name}: no cycle ran");
        if *name != "reconnect" {
            assert!(t.cut > 0, "{name}: never cut by the strike limit: {t:?}");
        }
    }
    let cut = r.grew("lobby_sockets_cut_total");
    assert!(cut >= total.cut as f64, "server counted {cut} sockets cut, the abusers saw {}", total.cut);
    assert!(r.grew("lobby_strikes_total") >= cut * 31.0, "each cut socket had more than 30 strikes");
    assert!(r.grew("lobby_sockets_disconnected_total{reason=\"server_disconnect\"}") >= cut);
    // the server let go of them: only the honest sockets left, memory back
    assert!(r.settled_secs.is_some(), "the server still counts abusive sockets");
    let limit = r.rss_baseline_kib + RSS_TOLERANCE_KIB;
    assert!(r.rss_after_kib <= limit, "RSS {} KiB after, baseline {} KiB", r.rss_after_kib, r.rss_baseline_kib);
    // and a second round of abuse leaves little more behind than the first: a leak of a whole
    // connection (tens of KiB) per abusive socket would add tens of MiB. Measured on the 2-core VM:
    // +0.1-0.2 MiB with jemalloc (+0.3-2.2 MiB with glibc's allocator), hence 2 MiB.
    let (first, last) = (r.rss_rounds_kib[0], r.rss_after_kib);
    assert!(last <= first + 2048, "RSS {first} KiB after the first round, {last} KiB after the second");
}

/// The honest pairs' relay p99 under abuse and after it, against the same run's without abuse. Asserted
/// only with `TUTTI_ABUSE_P99=1`: in the debug build the suite runs, on two cores shared with the
/// abusers and the test itself, the server is saturated by abusers at full speed and the p99 grows
/// tens of times (docs/reliability.md); bench/lobby-abuse.sh measures the release build, real-time.
fn check_latency(r: &ScenarioReport) {
    let p99 = |w: &serde_json::Value| w["p99_ms"].as_f64().unwrap();
    let (quiet, during, after) = (p99(&r.quiet), p99(&r.during), p99(&r.after));
    eprintln!("honest relay p99: {quiet:.2} ms without abuse, {during:.2} ms under it, {after:.2} ms after");
    if std::env::var("TUTTI_ABUSE_P99").is_ok_and(|v| v == "1") {
        assert!(during <= p99_bound(quiet), "honest relay p99 {during:.2} ms under abuse, {quiet:.2} ms without");
        assert!(after <= p99_bound(quiet), "honest relay p99 {after:.2} ms after the abuse, {quiet:.2} ms before");
    }
}

fn scenario(lobby: &Lobby, pairs: usize, abusers: usize, abuse_secs: u64) -> Scenario {
    Scenario {
        addr: lobby.addr,
        honest_source: None,
        abuse_source: Some("127.0.0.2".parse().unwrap()),
        pairs,
        abusers,
        every: Duration::from_millis(200),
        quiet: Duration::from_secs(5),
        abuse: Duration::from_secs(abuse_secs),
        after: Duration::from_secs(4),
        rounds: 2,
        server_pid: Some(lobby.pid()),
    }
}

#[test]
fn abusers_are_cut_and_honest_pairs_keep_relaying() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // all abusers come from one address: not paced per address here (its reconnect cycles would
    // take longer than the rounds); bench/lobby-abuse.sh measures the default
    let mut lobby = Lobby::start(&[NO_ADDRESS_PACE[0], NO_ADDRESS_PACE[1]]);
    let (pairs, abusers) = (20, 200);
    let report = scenario::run(&scenario(&lobby, pairs, abusers, 10));
    check(&report, pairs, abusers);
    assert!(lobby.alive(), "the lobby died");
    check_latency(&report);
}

fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-p", &redis.port.to_string()]).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn scaled_out_nothing_stays_in_redis_after_the_abuse() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let redis = Redis::start();
    let url = redis.url();
    let mut lobby = Lobby::start(&["--redis", &url, NO_ADDRESS_PACE[0], NO_ADDRESS_PACE[1]]);
    let (pairs, abusers) = (10, 100);
    let report = scenario::run(&scenario(&lobby, pairs, abusers, 6));
    check(&report, pairs, abusers);
    // everyone has left: only the process's own keys stay (its heartbeat, its count, the sequence)
    let deadline = Instant::now() + Duration::from_secs(5);
    let keys = loop {
        let mut keys: Vec<String> =
            redis_cli(&redis, &["--scan", "--pattern", "*"]).lines().map(str::to_string).collect();
        keys.sort();
        let only_process =
            keys.iter().all(|k| k == "lobby:seq" || k == "lobby:online" || k.starts_with("lobby:alive:"));
        if only_process || Instant::now() > deadline {
            break keys;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for key in &keys {
        let kind = redis_cli(&redis, &["type", key]);
        let size = match kind.as_str() {
            "hash" => redis_cli(&redis, &["hlen", key]),
            "zset" => redis_cli(&redis, &["zcard", key]),
            "set" => redis_cli(&redis, &["scard", key]),
            _ => redis_cli(&redis, &["strlen", key]),
        };
        eprintln!("left in Redis with the lobby running: {key} ({kind}, {size})");
    }
    assert!(
        keys.iter().all(|k| k == "lobby:seq" || k == "lobby:online" || k.starts_with("lobby:alive:")),
        "keys about sockets stayed in Redis: {keys:?}"
    );
    assert_eq!(redis_cli(&redis, &["hlen", "lobby:online"]), "1", "one process's count");
    lobby.terminate();
    let left = redis_cli(&redis, &["--scan", "--pattern", "*"]);
    assert_eq!(left, "lobby:seq", "a graceful stop leaves only the sequence");
    check_latency(&report);
}

/// Open files of a process.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// CPU time of a process in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// A raw HTTP GET, its request sent in three pieces 50 ms apart like a slow client's: the status line,
/// or the error (no answer at all is an error too).
fn status_of(addr: std::net::SocketAddr, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\n");
    for piece in [request.as_str(), "Host: lobby\r\n", "Connection: close\r\n\r\n"] {
        tcp.write_all(piece.as_bytes()).map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response).to_string();
    response.lines().next().map(str::to_string).ok_or_else(|| "closed without an answer".to_string())
}

#[test]
fn at_the_open_files_limit_new_connections_are_refused_and_open_ones_work() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(at_the_open_files_limit());
}

async fn at_the_open_files_limit() {
    const LIMIT: usize = 128;
    let mut command = Command::new("prlimit");
    command.arg(format!("--nofile={LIMIT}:{LIMIT}")).arg(env!("CARGO_BIN_EXE_tutti")).args([
        "lobby",
        "--listen",
        "127.0.0.1:0",
        // the open-files limit alone (the pace per address holds nothing back at these counts)
        NO_ADDRESS_PACE[0],
        NO_ADDRESS_PACE[1],
    ]);
    let mut lobby = Lobby::spawn(command);
    let pid = lobby.pid();
    let base = open_files(pid);
    // fill it: every connection takes one descriptor, until there is none
    let mut open = Vec::new();
    let refusal = loop {
        let started = Instant::now();
        match tokio::time::timeout(Duration::from_secs(5), Conn::connect(lobby.addr, None)).await {
            Ok(Ok(conn)) => open.push(conn),
            Ok(Err(e)) => break (e, started.elapsed()),
            Err(_) => panic!("connection {} neither accepted nor refused within 5 s", open.len() + 1),
        }
        assert!(open.len() <= LIMIT, "more connections than descriptors");
    };
    eprintln!("{} connections open ({base} descriptors before), then: {} after {:?}", open.len(), refusal.0, refusal.1);
    assert!(open.len() + base >= LIMIT - 4, "refused early: {} open with {base} descriptors used before", open.len());
    assert!(refusal.0.contains("503"), "the refusal is a 503: {}", refusal.0);
    assert!(refusal.1 < Duration::from_secs(1), "refused after {:?}", refusal.1);
    // more attempts: each refused at once; plain HTTP gets the 503 too
    let cpu_before = cpu_secs(pid);
    for _ in 0..20 {
        let started = Instant::now();
        let attempt = tokio::time::timeout(Duration::from_secs(3), Conn::connect(lobby.addr, None)).await;
        assert!(matches!(&attempt, Ok(Err(_))), "not refused: {:?}", attempt.as_ref().map(|r| r.as_ref().err()));
        assert!(started.elapsed() < Duration::from_secs(1), "refused after {:?}", started.elapsed());
    }
    let addr = lobby.addr;
    let status = tokio::task::spawn_blocking(move || status_of(addr, "/stats")).await.unwrap();
    assert!(status.as_deref().is_ok_and(|s| s.contains(" 503 ")), "plain HTTP at the limit: {status:?}");
    // no busy loop: at the limit and idle, the process sleeps
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = cpu_secs(pid) - cpu_before;
    assert!(cpu < 0.5, "{cpu:.2} s of CPU for 21 refusals and 2 idle seconds");
    assert!(lobby.alive(), "the lobby died at the limit");
    // the open connections keep working: two of them are matched and talk
    let mut b = open.pop().unwrap();
    let mut a = open.pop().unwrap();
    a.emit("find", serde_json::json!({})).await.unwrap();
    b.emit("find", serde_json::json!({})).await.unwrap();
    for conn in [&mut a, &mut b] {
        let matched = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some((name, _)) = conn.event().await {
                if name == "matched" {
                    return true;
                }
            }
            false
        });
        assert!(matched.await.unwrap_or(false), "open sockets are still matched at the limit");
    }
    a.emit("message", serde_json::json!({ "text": "still here" })).await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(5), b.event()).await.ok().flatten();
    assert_eq!(heard.map(|(n, d)| (n, d["text"].clone())), Some(("message".into(), "still here".into())));
    // some leave: new connections are accepted again, and the refusals were counted
    open.truncate(open.len() - 10);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        // (the server frees a place when it has seen the close, which a busy machine may delay)
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let conn = loop {
            let conn = tokio::time::timeout(Duration::from_secs(5), Conn::connect(lobby.addr, None)).await;
            if matches!(conn, Ok(Ok(_))) || tokio::time::Instant::now() > deadline {
                break conn;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(matches!(conn, Ok(Ok(_))), "not accepted again after others left");
        open.push(conn.unwrap().unwrap());
    }
    let metrics = tokio::task::spawn_blocking(move || scenario::metrics(addr)).await.unwrap();
    let refused = metrics.get("lobby_connections_refused_total").copied().unwrap_or(0.0);
    assert!(refused >= 22.0, "{refused} connections counted as refused, 22 were");
    drop((a, b, open));
    assert!(lobby.alive(), "the lobby died");
}
