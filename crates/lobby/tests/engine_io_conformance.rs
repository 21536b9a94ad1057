//! Every point of the official Engine.IO conformance suite (socketio/engine.io-protocol, `test-suite/`),
//! checked against the lobby's engine (the vendored engineioxide) with a raw HTTP and WebSocket client:
//! handshake, messages, heartbeat (the first ping one `pingInterval` after the open packet), close and
//! upgrade, over long-polling and WebSocket. The server is the suite's: an echo at `/engine.io/`.

mod conformance;

use conformance::*;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const POLL: &str = "/engine.io/?EIO=4&transport=polling";
const WS: &str = "/engine.io/?EIO=4&transport=websocket";

fn with_sid(path: &str, sid: &str) -> String {
    format!("{path}&sid={sid}")
}

fn assert_open(value: &serde_json::Value, upgrades: serde_json::Value) {
    let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
    assert!(value["sid"].is_string());
    assert_eq!(value["upgrades"], upgrades);
    assert_eq!(value["pingInterval"], PING_INTERVAL.as_millis() as u64);
    assert_eq!(value["pingTimeout"], PING_TIMEOUT.as_millis() as u64);
    assert_eq!(value["maxPayload"], MAX_PAYLOAD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_over_polling_and_its_refusals() {
    let addr = start().await;
    let (status, body) = get(addr, POLL).await;
    assert_eq!(status, 200);
    assert_open(&open_packet(&body), serde_json::json!(["websocket"]));
    for bad in ["/engine.io/?transport=polling", "/engine.io/?EIO=abc&transport=polling"] {
        assert_eq!(get(addr, bad).await.0, 400, "invalid EIO: {bad}");
    }
    for bad in ["/engine.io/?EIO=4", "/engine.io/?EIO=4&transport=abc"] {
        assert_eq!(get(addr, bad).await.0, 400, "invalid transport: {bad}");
    }
    for method in ["POST", "PUT"] {
        assert_eq!(http(addr, method, POLL, "").await.0, 400, "{method} without a session");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_over_websocket_and_its_refusals() {
    let addr = start().await;
    let mut ws = ws(addr, WS).await.unwrap();
    assert_open(&open_packet(&text(&mut ws).await), serde_json::json!([]));
    for bad in [
        "/engine.io/?transport=websocket",
        "/engine.io/?EIO=abc&transport=websocket",
        "/engine.io/?EIO=4",
        "/engine.io/?EIO=4&transport=abc",
    ] {
        assert!(conformance::ws(addr, bad).await.is_err(), "{bad} must not open");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_payloads_of_one_several_and_binary_packets_come_back_whole() {
    let addr = start().await;
    for payload in ["4hello", "4test1\x1e4test2\x1e4test3", "4hello\x1ebAQIDBA=="] {
        let sid = polling_session(addr, "/engine.io/").await;
        assert_eq!(post(addr, &with_sid(POLL, &sid), payload).await, (200, "ok".into()));
        // nothing else first: no ping before pingInterval
        assert_eq!(get(addr, &with_sid(POLL, &sid)).await, (200, payload.into()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_closes_the_session_on_an_invalid_packet_and_on_a_duplicate_poll() {
    // no ping may end the first poll before the second arrives
    let addr = start_with_ping_interval(Duration::from_secs(30)).await;
    let sid = polling_session(addr, "/engine.io/").await;
    let path = with_sid(POLL, &sid);
    assert_eq!(post(addr, &path, "abc").await.0, 400);
    assert_eq!(get(addr, &path).await.0, 400, "the session is gone");

    let sid = polling_session(addr, "/engine.io/").await;
    let path = with_sid(POLL, &sid);
    let first = tokio::spawn(async move { get(addr, &path).await });
    tokio::time::sleep(SETTLE).await;
    let second = get(addr, &format!("{}&t=burst", with_sid(POLL, &sid))).await;
    assert!([400, 500].contains(&second.0), "{second:?}");
    assert_eq!(first.await.unwrap(), (200, "1".into()), "the first poll gets a close packet");
    assert_eq!(get(addr, &with_sid(POLL, &sid)).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echoes_text_and_binary_and_closes_on_an_invalid_packet() {
    let addr = start().await;
    let mut ws = conformance::ws(addr, WS).await.unwrap();
    text(&mut ws).await;
    send(&mut ws, "4hello").await;
    assert_eq!(text(&mut ws).await, "4hello", "the echo, no ping first");
    ws_send_binary(&mut ws, &[1, 2, 3, 4]).await;
    assert_eq!(next(&mut ws).await, Some(Message::binary(vec![1u8, 2, 3, 4])));
    send(&mut ws, "abc").await;
    closed(&mut ws).await;
}

async fn ws_send_binary(ws: &mut Ws, data: &[u8]) {
    use futures_util::SinkExt;
    ws.send(Message::binary(data.to_vec())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_heartbeat_pings_after_the_interval_and_a_silent_session_ends() {
    let addr = start().await;
    let opened = Instant::now();
    let sid = polling_session(addr, "/engine.io/").await;
    let path = with_sid(POLL, &sid);
    for round in 0..3 {
        let asked = Instant::now();
        assert_eq!(get(addr, &path).await, (200, "2".into()), "ping {round}");
        if round == 0 {
            // the poll waited for it: the ping came one interval after the open packet, not at once
            assert!(opened.elapsed() >= PING_INTERVAL - Duration::from_millis(20), "{:?}", opened.elapsed());
            // (if the handshake was quick enough for the poll to be asked before the ping was due)
            if asked.duration_since(opened) < PING_INTERVAL / 2 {
                assert!(asked.elapsed() >= PING_INTERVAL / 4, "the first ping waited: {:?}", asked.elapsed());
            }
        }
        assert_eq!(post(addr, &path, "3").await.0, 200);
    }

    let sid = polling_session(addr, "/engine.io/").await;
    let opened = Instant::now();
    tokio::time::sleep(PING_INTERVAL + PING_TIMEOUT + Duration::from_millis(100)).await;
    // (a poll is not a pong: asking again does not keep the session alive)
    while get(addr, &with_sid(POLL, &sid)).await.0 != 400 {
        assert!(opened.elapsed() < WITHIN, "closed on ping timeout");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_heartbeat_pings_after_the_interval_and_a_silent_session_ends() {
    let addr = start().await;
    // (taken before connecting: the server's heartbeat counts from the session's start, which a busy
    // client may read some time later)
    let opened = Instant::now();
    let mut ws = conformance::ws(addr, WS).await.unwrap();
    text(&mut ws).await;
    for round in 0..3 {
        assert_eq!(text(&mut ws).await, "2", "ping {round}");
        if round == 0 {
            assert!(opened.elapsed() >= PING_INTERVAL - Duration::from_millis(20), "{:?}", opened.elapsed());
        }
        let answered = Instant::now();
        send(&mut ws, "3").await;
        if round < 2 {
            assert_eq!(text(&mut ws).await, "2");
            assert!(answered.elapsed() >= PING_INTERVAL - Duration::from_millis(20), "an interval after the pong");
            send(&mut ws, "3").await;
        }
    }
    let opened = Instant::now();
    let mut silent = conformance::ws(addr, WS).await.unwrap();
    text(&mut silent).await;
    closed(&mut silent).await;
    assert!(opened.elapsed() >= PING_INTERVAL + PING_TIMEOUT - Duration::from_millis(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_packet_ends_the_session_over_polling_and_websocket() {
    // no ping may end the poll before the close packet arrives
    let addr = start_with_ping_interval(Duration::from_secs(30)).await;
    let sid = polling_session(addr, "/engine.io/").await;
    let path = with_sid(POLL, &sid);
    let poll = {
        let path = path.clone();
        tokio::spawn(async move { get(addr, &path).await })
    };
    tokio::time::sleep(SETTLE).await;
    assert_eq!(post(addr, &path, "1").await.0, 200);
    assert_eq!(poll.await.unwrap(), (200, "6".into()), "the pending poll ends with a noop");
    assert_eq!(get(addr, &path).await.0, 400);

    let mut ws = conformance::ws(addr, WS).await.unwrap();
    text(&mut ws).await;
    send(&mut ws, "1").await;
    closed(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_from_polling_to_websocket_and_what_comes_after() {
    let addr = start().await;
    // the probe, the pending poll ended by a noop, the upgrade, then messages over the WebSocket
    let sid = polling_session(addr, "/engine.io/").await;
    let mut ws = conformance::ws(addr, &with_sid(WS, &sid)).await.unwrap();
    send(&mut ws, "2probe").await;
    assert_eq!(text(&mut ws).await, "3probe");
    assert_eq!(get(addr, &with_sid(POLL, &sid)).await, (200, "6".into()));
    send(&mut ws, "5").await;
    send(&mut ws, "4hello").await;
    assert_eq!(text(&mut ws).await, "4hello");

    // once upgraded, a poll with the same sid is refused, and the WebSocket goes on
    let (sid, mut ws) = upgraded(addr).await;
    assert_eq!(text(&mut ws).await, "3probe");
    assert_eq!(get(addr, &with_sid(POLL, &sid)).await.0, 400);
    send(&mut ws, "4hello").await;
    assert_eq!(text(&mut ws).await, "4hello");

    // and so is a second WebSocket with it
    let (sid, mut ws) = upgraded(addr).await;
    if let Ok(mut second) = conformance::ws(addr, &with_sid(WS, &sid)).await {
        closed(&mut second).await;
    }
    assert_eq!(text(&mut ws).await, "3probe");
    send(&mut ws, "4hello").await;
    assert_eq!(text(&mut ws).await, "4hello");

    // and a second WebSocket while the first is upgrading (probe answered, upgrade not yet sent) is
    // refused at once too: the upgrade goes on, well within the session's ping deadline
    let sid = polling_session(addr, "/engine.io/").await;
    let mut ws = conformance::ws(addr, &with_sid(WS, &sid)).await.unwrap();
    send(&mut ws, "2probe").await;
    assert_eq!(text(&mut ws).await, "3probe");
    if let Ok(mut second) = conformance::ws(addr, &with_sid(WS, &sid)).await {
        closed(&mut second).await;
    }
    send(&mut ws, "5").await;
    send(&mut ws, "4hello").await;
    assert_eq!(text(&mut ws).await, "4hello");
}

/// A polling session and a WebSocket that sent the probe and the upgrade at once (its `3probe` unread).
async fn upgraded(addr: std::net::SocketAddr) -> (String, Ws) {
    let sid = polling_session(addr, "/engine.io/").await;
    let mut ws = conformance::ws(addr, &with_sid(WS, &sid)).await.unwrap();
    send(&mut ws, "2probe").await;
    send(&mut ws, "5").await;
    (sid, ws)
}
