//! Load for benchmarks and tests (feature `load`): a minimal Socket.IO v5 client over a WebSocket
//! ([`Conn`]), honest pairs that chat and time their relay ([`chat`]), and abusive sockets ([`abuse`]).
//! Loopback only. Used by the load generator (examples/lobby_load.rs, bench/lobby*.sh) and the
//! abuse test (crates/tutti/tests/lobby_abuse.rs).

pub mod abuse;
pub mod chat;
pub mod scenario;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The WebSocket under a [`Conn`].
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One Socket.IO client connection.
pub struct Conn {
    pub ws: Ws,
}

impl Conn {
    /// Connects (from `source` when given), completes the Engine.IO and Socket.IO handshakes.
    pub async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> Result<Conn, String> {
        let ws = Self::open(addr, source, small_buffers()).await?;
        let mut conn = Conn { ws };
        loop {
            let text = conn.raw().await.ok_or("closed during the handshake")?;
            if text.starts_with('0') {
                conn.ws.send(Message::text("40")).await.map_err(|e| e.to_string())?;
            } else if text.starts_with("40") {
                return Ok(conn);
            }
        }
    }

    /// Only the WebSocket, with this client configuration (no Engine.IO handshake read yet).
    pub async fn open(addr: SocketAddr, source: Option<IpAddr>, config: WebSocketConfig) -> Result<Ws, String> {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?;
        }
        let tcp = socket.connect(addr).await.map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(tcp), Some(config))
            .await
            .map_err(|e| e.to_string())?;
        Ok(ws)
    }

    /// The next text frame, answering pings.
    pub async fn raw(&mut self) -> Option<String> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(t)) => {
                    if t.as_str() == "2" {
                        self.ws.send(Message::text("3")).await.ok()?;
                        continue;
                    }
                    return Some(t.as_str().to_string());
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next event other than `online` (acks are not requested, so none arrive).
    pub async fn event(&mut self) -> Option<(String, Value)> {
        loop {
            let text = self.raw().await?;
            if let Some((name, data)) = parse_event(&text) {
                if name != "online" {
                    return Some((name, data));
                }
            }
        }
    }

    pub async fn emit(&mut self, name: &str, data: Value) -> Option<()> {
        self.ws.send(Message::text(event_frame(name, &data))).await.ok()
    }
}

/// `42["name",data]` (without data when it is null).
pub fn event_frame(name: &str, data: &Value) -> String {
    let args = if data.is_null() { json!([name]) } else { json!([name, data]) };
    format!("42{args}")
}

/// An event frame's name and data.
pub fn parse_event(text: &str) -> Option<(String, Value)> {
    let body = text.strip_prefix("42")?;
    let Ok(Value::Array(mut args)) = serde_json::from_str::<Value>(body) else { return None };
    let data = if args.len() > 1 { args.remove(1) } else { Value::Null };
    Some((args.first()?.as_str()?.to_string(), data))
}

/// Client buffers for tens of thousands of idle sockets per process (the defaults are 128 KiB).
pub fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096)
}

/// The value at quantile `p` of sorted microseconds, in milliseconds (NaN for none).
pub fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// A process's resident set in KiB from /proc (0 when unknown).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
