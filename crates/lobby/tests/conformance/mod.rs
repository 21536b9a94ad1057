//! What the conformance tests share: the servers the official suites expect (on the lobby's engine),
//! started in-process on a free loopback port, and a raw HTTP and WebSocket client.
#![allow(dead_code)]

pub mod server;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[allow(unused_imports)]
pub use server::{MAX_PAYLOAD, PING_INTERVAL, PING_TIMEOUT};

/// How long a test waits for something that should come.
pub const WITHIN: Duration = Duration::from_secs(5);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Starts both servers; they stop with the test's runtime.
pub async fn start() -> SocketAddr {
    start_with_ping_interval(PING_INTERVAL).await
}

/// The same with another pingInterval: a long one for tests that hold a poll open while they do
/// something else, which a ping would end.
pub async fn start_with_ping_interval(ping_interval: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve_with_ping_interval(listener, ping_interval));
    addr
}

/// How long a test lets a request it spawned reach the server before it sends the next one.
pub const SETTLE: Duration = Duration::from_millis(300);

/// One HTTP/1.1 request on a connection of its own: status and body (text).
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let answer = tokio::time::timeout(WITHIN, sender.send_request(request)).await.expect("an answer").unwrap();
    let status = answer.status().as_u16();
    let body = answer.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, "").await
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    http(addr, "POST", path, body).await
}

/// The open packet's JSON.
pub fn open_packet(text: &str) -> serde_json::Value {
    let json = text.strip_prefix('0').unwrap_or_else(|| panic!("an open packet, got {text:?}"));
    serde_json::from_str(json).unwrap()
}

/// A long-polling session's id (`path` is `/engine.io/` or `/socket.io/`).
pub async fn polling_session(addr: SocketAddr, path: &str) -> String {
    let (status, body) = get(addr, &format!("{path}?EIO=4&transport=polling")).await;
    assert_eq!(status, 200, "{body}");
    open_packet(&body)["sid"].as_str().unwrap().to_string()
}

/// A WebSocket to `path_and_query`, or the HTTP status that refused it.
pub async fn ws(addr: SocketAddr, path_and_query: &str) -> Result<Ws, u16> {
    match tokio_tungstenite::connect_async(format!("ws://{addr}{path_and_query}")).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => Err(answer.status().as_u16()),
        Err(e) => panic!("WebSocket to {path_and_query}: {e}"),
    }
}

/// The next frame, text or binary; None when the connection ended.
pub async fn next(ws: &mut Ws) -> Option<Message> {
    loop {
        match tokio::time::timeout(WITHIN, ws.next()).await.expect("a frame or the end") {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return Some(m),
            Some(Ok(_)) => continue,
        }
    }
}

/// The next text frame.
pub async fn text(ws: &mut Ws) -> String {
    match next(ws).await {
        Some(Message::Text(t)) => t.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next text frame that is not a ping.
pub async fn text_no_ping(ws: &mut Ws) -> String {
    loop {
        let t = text(ws).await;
        if t != "2" {
            return t;
        }
    }
}

pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// Waits until the server ends the connection (a close frame or the stream's end), skipping frames.
pub async fn closed(ws: &mut Ws) {
    while next(ws).await.is_some() {}
}
