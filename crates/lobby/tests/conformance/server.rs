//! The servers that the official Socket.IO conformance suites expect (the `test-suite/` folders of
//! socketio/engine.io-protocol and socketio/socket.io-protocol; their READMEs give the reference
//! servers' settings), built on the lobby's engine: the vendored, patched engineioxide and socketioxide.
//!
//! - `/engine.io/`: a bare Engine.IO server that sends every message back;
//! - `/socket.io/`: a Socket.IO server whose main namespace emits `auth` with the handshake's payload,
//!   answers `message` with `message-back` and the same arguments, and acks `message-with-ack` with its
//!   arguments; `/custom` only emits `auth`.
//!
//! Both with pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000 and (Socket.IO) a connect
//! timeout of 1 s, as the suites want.

use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use engineioxide::config::EngineIoConfig;
use engineioxide::handler::EngineIoHandler;
use engineioxide::layer::EngineIoLayer;
use engineioxide::{DisconnectReason, Socket, Str};
use serde::ser::{SerializeTuple, Serializer};
use serde::Serialize;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::FromMessageParts;
use socketioxide::SocketIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

pub const PING_INTERVAL: Duration = Duration::from_millis(300);
pub const PING_TIMEOUT: Duration = Duration::from_millis(200);
pub const MAX_PAYLOAD: u64 = 1_000_000;

/// Serves both until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener) {
    serve_with_ping_interval(listener, PING_INTERVAL).await
}

/// The same with another pingInterval (for tests that must not see a ping).
pub async fn serve_with_ping_interval(listener: tokio::net::TcpListener, ping_interval: Duration) {
    let engine_config = EngineIoConfig::builder()
        .req_path("/engine.io")
        .ping_interval(ping_interval)
        .ping_timeout(PING_TIMEOUT)
        .max_payload(MAX_PAYLOAD)
        .build();
    let engine = EngineIoLayer::from_config(Arc::new(Echo), engine_config);
    let (socket_io, io) = SocketIo::builder()
        .ping_interval(ping_interval)
        .ping_timeout(PING_TIMEOUT)
        .max_payload(MAX_PAYLOAD)
        .connect_timeout(Duration::from_secs(1))
        .build_layer();
    io.ns("/", on_main);
    io.ns("/custom", on_custom);
    let app = Router::new().layer(socket_io).layer(engine);
    // as the lobby (and Node's HTTP server): no Nagle delay
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("the conformance server runs");
}

async fn on_main(s: SocketRef, Data(auth): Data<serde_json::Value>) {
    let _ = s.emit("auth", &auth);
    s.on("message", async |s: SocketRef, args: Args| {
        let _ = s.emit("message-back", &args);
    });
    s.on("message-with-ack", async |ack: AckSender, args: Args| {
        let _ = ack.send(&args);
    });
}

async fn on_custom(s: SocketRef, Data(auth): Data<serde_json::Value>) {
    let _ = s.emit("auth", &auth);
}

/// The bare Engine.IO server: every message back to its sender.
#[derive(Debug, Clone)]
struct Echo;

impl EngineIoHandler for Echo {
    type Data = ();
    fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
    fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
    fn on_message(self: &Arc<Self>, msg: Str, socket: Arc<Socket<()>>) {
        let _ = socket.emit(msg);
    }
    fn on_binary(self: &Arc<Self>, data: Bytes, socket: Arc<Socket<()>>) {
        let _ = socket.emit_binary(data);
    }
}

/// An event's arguments, whatever their number, text and binary alike; sent back as as many arguments.
struct Args(Vec<Arg>);

enum Arg {
    Json(serde_json::Value),
    Binary(Bytes),
}

impl<A: socketioxide::adapter::Adapter> FromMessageParts<A> for Args {
    type Error = Infallible;
    fn from_message_parts(
        _: &Arc<socketioxide::socket::Socket<A>>,
        value: &mut socketioxide_core::Value,
        _: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let socketioxide_core::Value::Str(text, binaries) = value else { return Ok(Args(Vec::new())) };
        let items: Vec<serde_json::Value> = serde_json::from_str(text.as_str()).unwrap_or_default();
        let binaries: Vec<Bytes> = binaries.take().map(Vec::from).unwrap_or_default();
        let args = items
            .into_iter()
            .skip(1) // the event's name
            .map(|item| match item.get("_placeholder").and(item.get("num")).and_then(|n| n.as_u64()) {
                Some(n) => binaries.get(n as usize).cloned().map(Arg::Binary).unwrap_or(Arg::Json(item)),
                None => Arg::Json(item),
            })
            .collect();
        Ok(Args(args))
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            match arg {
                Arg::Json(value) => tuple.serialize_element(value)?,
                Arg::Binary(bytes) => tuple.serialize_element(&serde_bytes_ref(bytes))?,
            }
        }
        tuple.end()
    }
}

/// Serializes as bytes (a binary attachment), not as a sequence of numbers.
fn serde_bytes_ref(bytes: &Bytes) -> impl Serialize + '_ {
    struct AsBytes<'a>(&'a [u8]);
    impl Serialize for AsBytes<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }
    AsBytes(bytes)
}
