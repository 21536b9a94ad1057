//! Scale-out: two `tutti lobby --redis` processes share one real `redis-server` (started by the test on
//! a free loopback port): strangers on different processes are matched, talk, see typing and leave;
//! hundreds join across both at once and pair exactly once; the online count is the total; interests
//! fall back to random across processes; and Redis holds nothing about anyone once everyone has left.
//! Liveness: a SIGKILLed process's users leave Redis within `--redis-ttl` (their partners are told, the
//! count drops); a process that stalls past it drops its sockets and serves again.
//! Calls by ID: a caller on one process rings, is declined by, and is matched with a callee on the
//! other (`lobby_support/js/calls.mjs`); the ID → socket mapping leaves Redis with the socket.

mod lobby_support;

use lobby_support::{matched_at_once, node, Client, Lobby, Redis};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-p", &redis.port.to_string()]).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The keys matching `pattern`, sorted.
fn scan(redis: &Redis, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis_cli(redis, &["--scan", "--pattern", pattern])
        .lines()
        .map(str::to_string)
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort();
    keys
}

/// Waits until `client` is told that `want` are online.
async fn wait_online(client: &Client, want: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let count = client.next_event("online", Duration::from_millis(600)).await.map(|v| v["count"].clone());
        if count == Some(json!(want)) {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {want} online (last {count:?})");
    }
}

/// Waits until Redis holds no socket and no waiter.
fn wait_redis_empty(redis: &Redis) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sockets = redis_cli(redis, &["--scan", "--pattern", "lobby:s:*"]);
        let waiting = redis_cli(redis, &["zcard", "lobby:queue"]);
        if sockets.is_empty() && waiting == "0" {
            return;
        }
        assert!(Instant::now() < deadline, "Redis still holds sockets {sockets:?} and {waiting} waiters");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_on_two_processes_meet_through_redis() {
    let redis = Redis::start();
    let one = Lobby::start(&["--redis", &redis.url()]);
    let two = Lobby::start(&["--redis", &redis.url()]);
    let mut a = Client::connect(one.addr).await;
    let mut b = Client::connect(two.addr).await;
    let mut c = Client::connect(two.addr).await;

    // the online count is the total over both processes
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let count = a.next_event("online", Duration::from_millis(600)).await.map(|v| v["count"].clone());
        if count == Some(json!(3)) {
            break;
        }
        assert!(Instant::now() < deadline, "a never saw 3 online (last {count:?})");
    }

    assert_eq!(a.call("find", json!({ "interests": ["rust"] })).await, json!({ "ok": true }));
    assert_eq!(b.call("find", json!({ "interests": ["Rust", "go"] })).await, json!({ "ok": true }));
    let ma = a.expect("matched", "a on process one").await;
    let mb = b.expect("matched", "b on process two").await;
    assert_ne!(ma["initiator"], mb["initiator"]);
    assert_eq!(ma["common"], json!(["rust"]));

    a.call("signal", json!({ "data": { "sdp": { "type": "offer", "sdp": "v=0" } } })).await;
    assert_eq!(b.expect("signal", "offer across processes").await["data"]["sdp"]["type"], "offer");
    b.call("typing", json!({ "on": true })).await;
    assert_eq!(a.expect("typing", "typing across processes").await, json!({ "on": true }));
    for i in 0..20 {
        a.emit("message", json!({ "text": format!("a{i}") }));
    }
    for i in 0..20 {
        assert_eq!(b.expect("message", "in order across processes").await["text"], format!("a{i}"));
    }
    b.call("message", json!({ "text": "back" })).await;
    assert_eq!(a.expect("message", "b to a").await["text"], "back");
    // c (same process as b) is nobody's partner and receives nothing
    assert_eq!(c.call("message", json!({ "text": "hello?" })).await["error"], "no_partner");
    assert!(c.next_event("message", Duration::from_millis(300)).await.is_none());

    // next across processes: b is told, and a is not given b again but takes c
    assert_eq!(a.call("next", Value::Null).await, json!({ "ok": true }));
    b.expect("partner_left", "partner_left across processes").await;
    b.call("find", json!({ "interests": ["rust"] })).await;
    assert!(a.next_event("matched", Duration::from_millis(400)).await.is_none(), "a got b back");
    c.call("find", json!({ "interests": ["rust"] })).await;
    c.expect("matched", "c takes a waiter").await;
    let m = tokio::select! {
        m = a.expect("matched", "a or b is matched with c") => ("a", m),
        m = b.expect("matched", "a or b is matched with c") => ("b", m),
    };
    assert_eq!(m.0, "a", "the oldest waiter (a) is matched first");

    // disconnecting on one process tells the partner on the other
    a.close();
    c.expect("partner_left", "disconnect across processes").await;
    b.close();
    c.close();
    wait_redis_empty(&redis);
    one.wait_stats(json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(5));
    two.wait_stats(json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(5));
}

/// 200 sockets, alternately on either process, find at once: 100 pairs, each socket matched exactly
/// once with a partner who gets its token (many pairs span both processes); then all leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_pair_exactly_once_across_processes() {
    const N: usize = 200;
    let redis = Redis::start();
    let lobbies = [Lobby::start(&["--redis", &redis.url()]), Lobby::start(&["--redis", &redis.url()])];
    let mut clients = matched_at_once(&[lobbies[0].addr, lobbies[1].addr], N).await;
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.call("message", json!({ "text": format!("{i}") })).await, json!({ "ok": true }));
    }
    let mut partner_of = vec![0usize; N];
    for (i, c) in clients.iter().enumerate() {
        let from: usize = c.expect("message", "the partner's token").await["text"].as_str().unwrap().parse().unwrap();
        assert_ne!(from, i);
        partner_of[i] = from;
        assert!(c.next_event("message", Duration::from_millis(5)).await.is_none(), "one token each");
    }
    for i in 0..N {
        assert_eq!(partner_of[partner_of[i]], i, "partners are mutual");
    }
    let across = (0..N).filter(|i| partner_of[*i] % 2 != i % 2).count();
    assert!(across > 0, "some pairs span the two processes");
    assert_eq!(redis_cli(&redis, &["zcard", "lobby:queue"]), "0");
    for c in clients {
        c.close();
    }
    wait_redis_empty(&redis);
    for lobby in &lobbies {
        lobby.wait_stats(json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(10));
    }
}

/// One socket's part of a closed match loop until `until`: find, and on `matched` say something; the
/// initiator presses `next` once it has heard its partner, the other finds again on `partner_left`.
async fn chat_in_a_loop(addr: std::net::SocketAddr, until: Instant) -> Vec<String> {
    let c = Client::connect(addr).await;
    c.emit("find", json!({}));
    while Instant::now() < until {
        let Some(matched) = c.next_event("matched", Duration::from_secs(2)).await else { break };
        c.emit("message", json!({ "text": "hi" }));
        if c.next_event("message", Duration::from_secs(2)).await.is_none() {
            break;
        }
        if matched["initiator"] == json!(true) {
            c.emit("next", Value::Null);
        } else if c.next_event("partner_left", Duration::from_secs(2)).await.is_some() {
            c.emit("find", json!({}));
        } else {
            break;
        }
    }
    let seen = c.seen();
    c.close();
    seen
}

/// A socket hears `matched` before anything its new partner sends, also when the partner is on another
/// process: the match's notice to one side and that side's partner's first message travel different
/// ways (this process's emit, the adapter's pub/sub), so the notice must leave first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matched_comes_before_the_partners_first_words_across_processes() {
    const N: usize = 16;
    let redis = Redis::start();
    let limits = ["--rate", "100000", "--burst", "100000"];
    let lobbies = [0, 1].map(|_| Lobby::start(&[&["--redis", &redis.url()][..], &limits[..]].concat()));
    let until = Instant::now() + Duration::from_secs(3);
    let loops: Vec<_> = (0..N).map(|i| tokio::spawn(chat_in_a_loop(lobbies[i % 2].addr, until))).collect();
    let mut matches = 0;
    for (i, seen) in futures_util::future::join_all(loops).await.into_iter().enumerate() {
        let seen: Vec<String> = seen
            .unwrap()
            .into_iter()
            .filter(|n| ["matched", "message", "partner_left"].contains(&n.as_str()))
            .collect();
        for (at, name) in seen.iter().enumerate() {
            if name == "message" {
                assert_eq!(
                    seen[..at].last().map(String::as_str),
                    Some("matched"),
                    "socket {i} heard its partner before it was told it was matched: …{:?}",
                    &seen[at.saturating_sub(4)..(at + 2).min(seen.len())]
                );
            }
        }
        matches += seen.iter().filter(|n| *n == "matched").count();
    }
    // (how many is the machine's business: the order is what this test checks)
    assert!(matches > 2 * N, "the loop ran ({matches} matches)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interests_fall_back_to_random_across_processes() {
    let redis = Redis::start();
    let one = Lobby::start(&["--redis", &redis.url(), "--fallback-wait", "0.6"]);
    let two = Lobby::start(&["--redis", &redis.url(), "--fallback-wait", "0.6"]);
    let mut a = Client::connect(one.addr).await;
    let mut b = Client::connect(two.addr).await;
    let asked = Instant::now();
    a.call("find", json!({ "interests": ["chess"] })).await;
    b.call("find", json!({ "interests": ["jazz"] })).await;
    assert!(a.next_event("matched", Duration::from_millis(300)).await.is_none(), "no overlap: wait first");
    assert_eq!(a.expect("matched", "random fallback").await["common"], json!([]));
    assert_eq!(b.expect("matched", "random fallback").await["common"], json!([]));
    assert!(asked.elapsed() >= Duration::from_millis(600), "not before the wait: {:?}", asked.elapsed());
}

/// Process one is SIGKILLed with a user waiting on it and another paired with a user on process two:
/// within `--redis-ttl` (2 s here) two's user is told its partner left, Redis holds nothing of one's
/// users, its process, or its online count, and a newcomer is not matched with the dead waiter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_is_forgotten_and_its_partners_are_told() {
    const TTL: Duration = Duration::from_secs(2);
    let redis = Redis::start();
    let args = ["--redis", &redis.url(), "--redis-ttl", "2"];
    let mut one = Lobby::start(&args);
    let mut two = Lobby::start(&args);
    let mut waiter = Client::connect(one.addr).await;
    let mut paired = Client::connect(one.addr).await;
    let mut b = Client::connect(two.addr).await;
    let mut watcher = Client::connect(two.addr).await;
    wait_online(&watcher, 4, Duration::from_secs(5)).await;
    assert_eq!(waiter.call("find", json!({})).await, json!({ "ok": true }));
    paired.call("find", json!({ "interests": ["crash"] })).await;
    b.call("find", json!({ "interests": ["crash"] })).await;
    b.expect("matched", "b with paired, across processes").await;
    paired.expect("matched", "paired with b").await;
    assert_eq!(scan(&redis, "lobby:s:*").len(), 3);
    assert_eq!(scan(&redis, "lobby:alive:*").len(), 2);
    assert_eq!(redis_cli(&redis, &["zcard", "lobby:queue"]), "1", "the waiter waits");

    one.kill();
    let killed = Instant::now();
    b.expect("partner_left", "the partner's process died").await;
    let told = killed.elapsed();
    assert!(told < TTL + Duration::from_millis(1500), "told after {told:?}");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (sockets, processes) = (scan(&redis, "lobby:s:*"), scan(&redis, "lobby:alive:*"));
        let (sets, counts) = (scan(&redis, "lobby:n:*"), redis_cli(&redis, &["hlen", "lobby:online"]));
        let waiting = redis_cli(&redis, &["zcard", "lobby:queue"]);
        if sockets.len() == 1 && processes.len() == 1 && sets.len() == 1 && counts == "1" && waiting == "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Redis keeps the dead process: sockets {sockets:?}, processes {processes:?}, sets {sets:?}, \
             {counts} counts, {waiting} waiting"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let b_fields = redis_cli(&redis, &["--scan", "--pattern", "lobby:s:*"]);
    let b_fields = redis_cli(&redis, &["hkeys", &b_fields]);
    assert!(!b_fields.contains("partner") && !b_fields.contains("skipped"), "b keeps no dead id: {b_fields}");
    eprintln!("SIGKILL to partner_left: {told:?}; Redis clean after {:?}", killed.elapsed());
    wait_online(&watcher, 2, Duration::from_secs(3)).await;

    let mut newcomer = Client::connect(two.addr).await;
    assert_eq!(newcomer.call("find", json!({})).await, json!({ "ok": true }));
    assert!(newcomer.next_event("matched", Duration::from_millis(700)).await.is_none(), "matched with the dead waiter");
    assert_eq!(watcher.call("find", json!({})).await, json!({ "ok": true }));
    newcomer.expect("matched", "the newcomer with a live user").await;

    // a graceful stop removes everything at once
    two.terminate();
    assert_eq!(scan(&redis, "lobby:*"), ["lobby:seq"]);
}

/// Process one stops (SIGSTOP) for longer than its TTL: process two purges its waiter; when one runs
/// again it finds it had lapsed, disconnects its sockets (the page reconnects), and serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_stalls_past_its_ttl_drops_its_sockets_and_serves_again() {
    let redis = Redis::start();
    let args = ["--redis", &redis.url(), "--redis-ttl", "1.5"];
    let one = Lobby::start(&args);
    let two = Lobby::start(&args);
    let mut stalled = Client::connect(one.addr).await;
    let mut b = Client::connect(two.addr).await;
    stalled.call("find", json!({})).await;
    one.signal("STOP");
    std::thread::sleep(Duration::from_millis(1500));
    // (expiry after 1.5 s, seen by process two's next sweep: waited for while one stays stopped)
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut purged = scan(&redis, "lobby:s:*").is_empty();
    while !purged && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        purged = scan(&redis, "lobby:s:*").is_empty();
    }
    one.signal("CONT");
    assert!(purged, "the stalled process's waiter stays in Redis");
    assert!(stalled.closed_within(Duration::from_secs(3)).await, "the stalled process kept its socket");
    let mut again = Client::connect(one.addr).await;
    again.call("find", json!({})).await;
    assert_eq!(b.call("find", json!({})).await, json!({ "ok": true }));
    again.expect("matched", "process one serves again").await;
    b.expect("matched", "b across").await;
}

#[test]
fn a_call_by_id_reaches_a_callee_on_another_process() {
    let redis = Redis::start();
    let one = Lobby::start(&["--redis", &redis.url()]);
    let two = Lobby::start(&["--redis", &redis.url()]);
    let (ok, output) = node("calls.mjs", &[&one.url(), &two.url()], Duration::from_secs(30));
    assert!(ok && output.contains("calls ok"), "calls across processes failed:\n{output}");
    wait_redis_empty(&redis);
    assert!(scan(&redis, "lobby:id:*").is_empty(), "no reachable ID stays in Redis");
}
