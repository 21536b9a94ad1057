//! Scale-out: two `tutti lobby --redis` processes share one real `redis-server` (started by the test on
//! a free loopback port): strangers on different processes are matched, talk, see typing and leave;
//! hundreds join across both at once and pair exactly once; the online count is the total; and Redis
//! holds nothing about anyone once everyone has left.

mod lobby_support;

use lobby_support::{matched_at_once, Client, Lobby, Redis};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-p", &redis.port.to_string()]).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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
