//! Every point of the official Socket.IO conformance suite (socketio/socket.io-protocol, `test-suite/`)
//! that its Engine.IO part does not share with tests/engine_io_conformance.rs, checked against the
//! lobby's engine and socketioxide with a raw WebSocket client: connect (main and custom namespace,
//! with and without a payload, unknown namespace, bad handshake, no handshake), disconnect, events and
//! acks with and without binary attachments, and malformed packets. The server is the suite's, at
//! `/socket.io/`.

mod conformance;

use conformance::*;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const WS: &str = "/socket.io/?EIO=4&transport=websocket";

/// Engine.IO and Socket.IO handshakes on the main namespace; the `auth` event read.
async fn connected(addr: std::net::SocketAddr) -> Ws {
    let mut ws = conformance::ws(addr, WS).await.unwrap();
    text(&mut ws).await;
    send(&mut ws, "40").await;
    assert!(text(&mut ws).await.starts_with("40"));
    assert_eq!(text(&mut ws).await, r#"42["auth",{}]"#);
    ws
}

/// The CONNECT answer's JSON after `prefix`: exactly a string `sid`.
fn assert_connect_answer(text: &str, prefix: &str) {
    let json = text.strip_prefix(prefix).unwrap_or_else(|| panic!("{text:?} should start with {prefix:?}"));
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let object = value.as_object().unwrap();
    assert_eq!(object.keys().collect::<Vec<_>>(), ["sid"]);
    assert!(value["sid"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_io_handshake_under_socket_io() {
    let addr = start().await;
    let (status, body) = get(addr, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(status, 200);
    let open = open_packet(&body);
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(open["pingInterval"], 300);
    assert_eq!(open["pingTimeout"], 200);
    assert_eq!(open["maxPayload"], 1_000_000);
    for bad in ["/socket.io/?transport=polling", "/socket.io/?EIO=abc&transport=polling", "/socket.io/?EIO=4"] {
        assert_eq!(get(addr, bad).await.0, 400, "{bad}");
    }
    // and the heartbeat: no ping before the interval
    // (the server's interval counts from the session's start, which is after `opened`)
    let opened = Instant::now();
    let sid = polling_session(addr, "/socket.io/").await;
    assert_eq!(get(addr, &format!("/socket.io/?EIO=4&transport=polling&sid={sid}")).await, (200, "2".into()));
    assert!(opened.elapsed() >= PING_INTERVAL - Duration::from_millis(20), "{:?}", opened.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_the_main_and_a_custom_namespace_with_and_without_a_payload() {
    let addr = start().await;
    for (connect, prefix, auth) in [
        ("40", "40", r#"42["auth",{}]"#),
        (r#"40{"token":"123"}"#, "40", r#"42["auth",{"token":"123"}]"#),
        ("40/custom,", "40/custom,", r#"42/custom,["auth",{}]"#),
        (r#"40/custom,{"token":"abc"}"#, "40/custom,", r#"42/custom,["auth",{"token":"abc"}]"#),
    ] {
        let mut ws = conformance::ws(addr, WS).await.unwrap();
        text(&mut ws).await;
        send(&mut ws, connect).await;
        // the answer and the auth event are the next two frames: no ping before them
        assert_connect_answer(&text(&mut ws).await, prefix);
        assert_eq!(text(&mut ws).await, auth, "after {connect}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connects_unknown_namespace_bad_handshake_and_none_at_all() {
    let addr = start().await;
    let mut ws = conformance::ws(addr, WS).await.unwrap();
    text(&mut ws).await;
    send(&mut ws, "40/random").await;
    assert_eq!(text(&mut ws).await, r#"44/random,{"message":"Invalid namespace"}"#);

    let mut ws = conformance::ws(addr, WS).await.unwrap();
    text(&mut ws).await;
    send(&mut ws, "4abc").await;
    closed(&mut ws).await;

    let mut ws = conformance::ws(addr, WS).await.unwrap();
    text(&mut ws).await;
    closed(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_a_namespace_keeps_the_connection() {
    let addr = start().await;
    let mut ws = connected(addr).await;
    send(&mut ws, "41").await;
    assert_eq!(text(&mut ws).await, "2", "the connection stays: the next frame is a ping");

    let mut ws = connected(addr).await;
    assert_eq!(text(&mut ws).await, "2");
    send(&mut ws, "3").await;
    send(&mut ws, "40/custom").await;
    assert!(text(&mut ws).await.starts_with("40/custom,"));
    assert_eq!(text(&mut ws).await, r#"42/custom,["auth",{}]"#);
    send(&mut ws, "41/custom").await;
    send(&mut ws, r#"42["message","message to main namespace"]"#).await;
    assert_eq!(text_no_ping(&mut ws).await, r#"42["message-back","message to main namespace"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_acks_with_and_without_binary_attachments() {
    let addr = start().await;
    let mut ws = connected(addr).await;
    send(&mut ws, r#"42["message",1,"2",{"3":[true]}]"#).await;
    assert_eq!(text_no_ping(&mut ws).await, r#"42["message-back",1,"2",{"3":[true]}]"#);

    send(&mut ws, r#"42456["message-with-ack",1,"2",{"3":[false]}]"#).await;
    assert_eq!(text_no_ping(&mut ws).await, r#"43456[1,"2",{"3":[false]}]"#);

    for (event, answer) in [
        (
            r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        ),
        (
            r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        ),
    ] {
        send(&mut ws, event).await;
        binary(&mut ws, &[1, 2, 3]).await;
        binary(&mut ws, &[4, 5, 6]).await;
        assert_eq!(text_no_ping(&mut ws).await, answer);
        assert_eq!(next(&mut ws).await, Some(Message::binary(vec![1u8, 2, 3])));
        assert_eq!(next(&mut ws).await, Some(Message::binary(vec![4u8, 5, 6])));
    }
}

async fn binary(ws: &mut Ws, data: &[u8]) {
    use futures_util::SinkExt;
    ws.send(Message::binary(data.to_vec())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_close_the_connection() {
    let addr = start().await;
    for bad in ["4abc", "42{}", r#"42abc["message-with-ack",1,"2",{"3":[false]}]"#] {
        let mut ws = connected(addr).await;
        send(&mut ws, bad).await;
        let started = Instant::now();
        closed(&mut ws).await;
        // at once, not by the ping timeout
        assert!(started.elapsed() < PING_INTERVAL + PING_TIMEOUT - Duration::from_millis(50), "{bad}");
    }
}
