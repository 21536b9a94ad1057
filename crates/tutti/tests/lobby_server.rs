//! `tutti lobby` as a real process, driven by Rust Socket.IO clients: matching (interests, fallback,
//! never the partner just left), relay only between partners, size and rate limits with error acks,
//! abuse disconnects, hundreds of sockets at once, and counts back to zero after thousands of cycles.

mod lobby_support;

use lobby_support::{matched_at_once, Client, Lobby};
use serde_json::{json, Value};
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

async fn pair(lobby: &Lobby, a_tags: Value, b_tags: Value) -> (Client, Client, Value, Value) {
    let mut a = Client::connect(lobby.addr).await;
    let mut b = Client::connect(lobby.addr).await;
    assert_eq!(a.call("find", json!({ "interests": a_tags })).await, json!({ "ok": true }));
    assert_eq!(b.call("find", json!({ "interests": b_tags })).await, json!({ "ok": true }));
    let ma = a.expect("matched", "a is matched").await;
    let mb = b.expect("matched", "b is matched").await;
    (a, b, ma, mb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_strangers_meet_and_talk_only_to_each_other() {
    let lobby = Lobby::start(&[]);
    let mut bystander = Client::connect(lobby.addr).await;
    let (mut a, mut b, ma, mb) = pair(&lobby, json!(["Jazz", "chess"]), json!(["jazz", "go"])).await;
    assert_ne!(ma["initiator"], mb["initiator"], "exactly one initiator: {ma} {mb}");
    assert_eq!(ma["common"], json!(["jazz"]));
    assert_eq!(mb["common"], json!(["jazz"]));
    assert_eq!(lobby.stats(), json!({ "sockets": 3, "waiting": 0, "pairs": 1 }));

    let offer = json!({ "sdp": { "type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n" } });
    assert_eq!(a.call("signal", json!({ "data": offer })).await, json!({ "ok": true }));
    assert_eq!(b.expect("signal", "the offer is relayed").await, json!({ "data": offer }));
    assert_eq!(b.call("typing", json!({ "on": true })).await, json!({ "ok": true }));
    assert_eq!(a.expect("typing", "typing is relayed").await, json!({ "on": true }));
    a.call("message", json!({ "text": "hello" })).await;
    assert_eq!(b.expect("message", "a's message").await, json!({ "text": "hello" }));
    b.call("message", json!({ "text": "héllo back" })).await;
    assert_eq!(a.expect("message", "b's message").await, json!({ "text": "héllo back" }));

    // someone without a partner can send nothing to anybody
    let refused = bystander.call("message", json!({ "text": "let me in" })).await;
    assert_eq!(refused["error"], "no_partner", "{refused}");
    assert!(a.next_event("message", QUIET).await.is_none());
    assert!(b.next_event("message", QUIET).await.is_none());
    let seen = bystander.seen();
    assert!(seen.iter().all(|n| n == "online"), "the bystander received only online counts: {seen:?}");

    // next: b hears partner_left; a waits and is not given b again
    assert_eq!(a.call("next", Value::Null).await, json!({ "ok": true }));
    b.expect("partner_left", "b is told").await;
    assert_eq!(b.call("find", json!({})).await, json!({ "ok": true }));
    assert!(a.next_event("matched", QUIET).await.is_none(), "a was matched with b again");
    assert_eq!(b.call("message", json!({ "text": "still there?" })).await["error"], "no_partner");
    // the bystander shares an interest with a (requeued by next with its interests): they meet, b waits
    assert_eq!(bystander.call("find", json!({ "interests": ["CHESS"] })).await, json!({ "ok": true }));
    let m = bystander.expect("matched", "the third socket is matched").await;
    assert_eq!(m["common"], json!(["chess"]));
    a.expect("matched", "a is rematched with the third socket").await;
    assert_eq!(lobby.stats(), json!({ "sockets": 3, "waiting": 1, "pairs": 1 }));

    // no payload the server generated carries an address or an id
    for client in [&a, &b, &bystander] {
        for (name, data) in client.history.lock().unwrap().iter() {
            let text = data.to_string();
            assert!(!text.contains("127.0.0.1") && !text.contains("sid"), "{name} carries {text}");
            if name == "matched" {
                let mut keys: Vec<_> = data.as_object().unwrap().keys().cloned().collect();
                keys.sort();
                assert_eq!(keys, ["common", "initiator"], "matched says nothing about the partner");
            }
        }
    }
    a.close();
    b.close();
    bystander.close();
    lobby.wait_stats(json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interests_fall_back_to_random_after_the_wait() {
    let lobby = Lobby::start(&["--fallback-wait", "0.6"]);
    let mut a = Client::connect(lobby.addr).await;
    let mut b = Client::connect(lobby.addr).await;
    a.call("find", json!({ "interests": ["chess"] })).await;
    b.call("find", json!({ "interests": ["jazz"] })).await;
    assert!(a.next_event("matched", Duration::from_millis(300)).await.is_none(), "no overlap: wait first");
    let m = a.expect("matched", "random fallback").await;
    assert_eq!(m["common"], json!([]));
    b.expect("matched", "random fallback").await;
    let bad = a.call("find", json!({ "interests": ["x"] })).await;
    assert_eq!(bad["error"], "already_matched");
    let mut c = Client::connect(lobby.addr).await;
    let refused = c.call("find", json!({ "interests": vec!["t"; 11] })).await;
    assert_eq!(refused["error"], "invalid_interests", "{refused}");
    let refused = c.call("find", json!({ "interests": ["x".repeat(33)] })).await;
    assert_eq!(refused["error"], "invalid_interests", "{refused}");
    let refused = c.call("find", json!({ "interests": "chess" })).await;
    assert_eq!(refused["error"], "bad_payload", "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_payloads_are_refused_with_an_error_ack() {
    let lobby = Lobby::start(&[]);
    let (mut a, b, _, _) = pair(&lobby, json!([]), json!([])).await;
    let ok = a.call("message", json!({ "text": "é".repeat(2000) })).await;
    assert_eq!(ok, json!({ "ok": true }), "2,000 characters are allowed");
    b.expect("message", "the longest allowed text").await;
    let refused = a.call("message", json!({ "text": "a".repeat(2001) })).await;
    assert_eq!(refused["error"], "too_large", "{refused}");
    let sdp = "x".repeat(16 * 1024);
    let refused = a.call("signal", json!({ "data": { "sdp": { "type": "offer", "sdp": sdp } } })).await;
    assert_eq!(refused["error"], "too_large", "{refused}");
    let refused = a.call("message", json!({ "words": "no text field" })).await;
    assert_eq!(refused["error"], "bad_payload", "{refused}");
    let refused = a.call("typing", json!({ "on": "yes" })).await;
    assert_eq!(refused["error"], "bad_payload", "{refused}");
    assert!(b.next_event("message", QUIET).await.is_none(), "nothing refused was relayed");
    assert!(b.next_event("signal", Duration::from_millis(10)).await.is_none());
    // a packet over the transport's maximum closes the connection instead
    assert!(lobby.stats()["sockets"] == 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_is_rate_limited_and_persistent_abuse_disconnects() {
    // a slow refill (one event in 5 s), so that how long the 25 calls take on a loaded machine
    // does not change how many pass
    let lobby = Lobby::start(&["--rate", "0.2", "--burst", "10", "--strikes", "20"]);
    let (mut a, mut b, _, _) = pair(&lobby, json!([]), json!([])).await;
    let mut ok = 0;
    let mut limited = 0;
    for i in 0..25 {
        let reply = a.call("message", json!({ "text": format!("m{i}") })).await;
        if reply == json!({ "ok": true }) {
            ok += 1;
        } else {
            assert_eq!(reply["error"], "rate_limited", "{reply}");
            limited += 1;
        }
    }
    assert!((9..=10).contains(&ok), "the burst (10, one spent on find) passes, then the limit: {ok} ok");
    assert!(limited >= 15);
    let mut relayed = 0;
    while b.next_event("message", Duration::from_millis(200)).await.is_some() {
        relayed += 1;
    }
    assert_eq!(relayed, ok, "only accepted messages were relayed");
    // keep flooding: after more than 20 strikes within 10 s the socket is dropped
    for i in 0..20 {
        a.emit("message", json!({ "text": format!("flood{i}") }));
    }
    assert!(a.closed_within(Duration::from_secs(5)).await, "the abuser was disconnected");
    b.expect("partner_left", "the partner of a disconnected abuser is told").await;
    lobby.wait_stats(json!({ "sockets": 1, "waiting": 0, "pairs": 0 }), Duration::from_secs(5));
    // an ordinary user is unaffected
    assert_eq!(b.call("find", json!({})).await, json!({ "ok": true }));
}

/// 400 sockets connect and `find` at once: 200 pairs, everyone matched exactly once, partners mutual
/// (a token sent by each arrives at exactly one other socket, the partner); then half leave at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_join_and_leave_at_once() {
    const N: usize = 400;
    let lobby = Lobby::start(&[]);
    let mut clients = matched_at_once(&[lobby.addr], N).await;
    assert_eq!(lobby.stats(), json!({ "sockets": N, "waiting": 0, "pairs": N / 2 }));
    let initiators = clients
        .iter()
        .filter(|c| c.history.lock().unwrap().iter().any(|(n, d)| n == "matched" && d["initiator"] == true))
        .count();
    assert_eq!(initiators, N / 2);
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.call("message", json!({ "text": format!("token {i}") })).await, json!({ "ok": true }));
    }
    let mut partner_of = vec![usize::MAX; N];
    for (i, c) in clients.iter().enumerate() {
        let m = c.expect("message", "the partner's token").await;
        let from: usize = m["text"].as_str().unwrap().strip_prefix("token ").unwrap().parse().unwrap();
        assert_ne!(from, i, "never matched with itself");
        partner_of[i] = from;
        assert!(c.next_event("message", Duration::from_millis(5)).await.is_none(), "one token each");
    }
    for i in 0..N {
        assert_eq!(partner_of[partner_of[i]], i, "partners are mutual");
    }
    // the first half leaves at once; their partners in the second half are told, the others are not
    let leaving: Vec<Client> = clients.drain(..N / 2).collect();
    let left: Vec<usize> = (0..N / 2).collect();
    for c in leaving {
        c.close();
    }
    for (k, c) in clients.iter().enumerate() {
        let i = k + N / 2;
        let told =
            c.next_event("partner_left", Duration::from_millis(if left.contains(&partner_of[i]) { 5000 } else { 50 }));
        assert_eq!(told.await.is_some(), left.contains(&partner_of[i]), "socket {i}");
    }
    let still_paired = (N / 2..N).filter(|i| partner_of[*i] >= N / 2).count() / 2;
    lobby.wait_stats(json!({ "sockets": N / 2, "waiting": 0, "pairs": still_paired }), Duration::from_secs(10));
    for c in clients {
        c.close();
    }
    lobby.wait_stats(json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(10));
}

/// Thousands of sockets connect, find, match, talk and disconnect in waves; all counts return to zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_cycles_leave_nothing_behind() {
    const WORKERS: usize = 50;
    const CYCLES: usize = 40;
    let lobby = Lobby::start(&[]);
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let addr = lobby.addr;
        workers.push(tokio::spawn(async move {
            let mut matches = 0;
            for cycle in 0..CYCLES {
                let mut c = Client::connect(addr).await;
                c.call("find", json!({ "interests": [format!("t{}", (w + cycle) % 3)] })).await;
                if c.next_event("matched", Duration::from_millis(if cycle % 2 == 0 { 2000 } else { 20 }))
                    .await
                    .is_some()
                {
                    matches += 1;
                    c.call("message", json!({ "text": "hi" })).await;
                    if cycle % 3 == 0 {
                        c.call("next", Value::Null).await;
                    }
                }
                c.close();
            }
            matches
        }));
    }
    let mut matches = 0;
    for w in workers {
        matches += w.await.unwrap();
    }
    assert!(matches > WORKERS * CYCLES / 4, "many of the {} sockets were matched: {matches}", WORKERS * CYCLES);
    lobby.wait_stats(json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_messages_arrives_in_order() {
    let lobby = Lobby::start(&[]);
    let (a, b, _, _) = pair(&lobby, json!([]), json!([])).await;
    for i in 0..50 {
        a.emit("message", json!({ "text": format!("line {i}") }));
    }
    for i in 0..50 {
        assert_eq!(b.expect("message", "the burst").await, json!({ "text": format!("line {i}") }));
    }
}

/// `online` is broadcast at most twice a second, and only when the count changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_count_is_throttled_and_only_sent_on_change() {
    let lobby = Lobby::start(&[]);
    let watcher = Client::connect(lobby.addr).await;
    assert_eq!(watcher.expect("online", "the count on connect").await, json!({ "count": 1 }));
    tokio::time::sleep(Duration::from_millis(700)).await;
    while watcher.next_event("online", Duration::from_millis(10)).await.is_some() {}
    assert!(watcher.next_event("online", Duration::from_millis(1200)).await.is_none(), "no change, no broadcast");
    // 30 sockets arrive over 1.5 s: the watcher hears at most 2 broadcasts per second (+1 for the window edge)
    let started = tokio::time::Instant::now();
    let mut others = Vec::new();
    for _ in 0..30 {
        others.push(Client::connect(lobby.addr).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut counts = Vec::new();
    // until 800 ms pass without one once the final count came (a busy machine may hold a broadcast up)
    let deadline = started + Duration::from_secs(15);
    loop {
        match watcher.next_event("online", Duration::from_millis(800)).await {
            Some(v) => counts.push(v["count"].as_u64().unwrap()),
            None if counts.last() == Some(&31) || tokio::time::Instant::now() > deadline => break,
            None => {}
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(counts.len() as f64 <= secs * 2.0 + 1.0, "{} broadcasts in {secs:.1} s: {counts:?}", counts.len());
    assert_eq!(counts.last(), Some(&31), "the last broadcast has the final count: {counts:?}");
    assert!(counts.windows(2).all(|w| w[0] != w[1]), "never the same count twice in a row: {counts:?}");
}

/// Sockets that `find` as soon as they are told they are connected, each to meet a socket waiting
/// for it (lanes of their own interest, 20 at once): every one hears `matched`. socketioxide marks a
/// socket connected only after it handed the CONNECT answer to the engine, which may write it to the
/// client at once; a `matched` emitted before the mark used to be refused, and was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_find_as_soon_as_they_connect_hear_matched() {
    const LANES: usize = 20;
    const ROUNDS: usize = 50;
    let lobby = Lobby::start(&[]);
    let addr = lobby.addr;
    let lanes: Vec<_> = (0..LANES)
        .map(|lane| {
            tokio::spawn(async move {
                let interests = json!({ "interests": [format!("lane{lane}")] });
                let mut waiter = Client::connect(addr).await;
                for round in 0..ROUNDS {
                    assert_eq!(waiter.call("find", interests.clone()).await, json!({ "ok": true }));
                    let newcomer = Client::connect(addr).await;
                    newcomer.emit("find", interests.clone());
                    let heard = newcomer.next_event("matched", Duration::from_secs(5)).await;
                    assert!(heard.is_some(), "lane {lane}, round {round}: the newcomer heard no `matched`");
                    waiter.expect("matched", "the waiter is matched").await;
                    newcomer.close();
                    waiter.expect("partner_left", "the newcomer left").await;
                }
                waiter.close();
            })
        })
        .collect();
    for lane in lanes {
        lane.await.unwrap();
    }
    lobby.wait_stats(json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(10));
}
