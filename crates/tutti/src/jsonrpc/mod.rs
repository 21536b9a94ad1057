//! JSON-RPC 2.0 as Jamulus 3.9.1 speaks it (`--jsonrpcport`, `--jsonrpcsecretfile`): one compact
//! JSON document per line over TCP, on 127.0.0.1 unless `--jsonrpcbindip` says otherwise. The first
//! call must be `jamulus/apiAuth` with the secret; errors and their texts are Jamulus'.
//!
//! Each connection has its own thread and talks to the jam server only through the server's
//! command channel (with a timeout), so a slow or hostile peer can delay nobody but itself. At most
//! [`MAX_CONNECTIONS`] connections are served at once; lines longer than [`MAX_LINE`] end the
//! connection, and a connection that has not authenticated within [`AUTH_DEADLINE`] is closed.

mod server_api;

pub use server_api::ServerApi;

use serde_json::{json, Map, Value};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

pub const MAX_CONNECTIONS: usize = 16;
pub const MAX_LINE: usize = 1 << 20;
pub const AUTH_DEADLINE: Duration = Duration::from_secs(30);
/// A peer that does not read its answers for this long is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// A JSON-RPC error: code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into() }
    }

    pub fn invalid_params(what: &str) -> Self {
        RpcError::new(-32602, format!("Invalid params: {what}"))
    }
}

/// The methods one side (server or client) offers besides `jamulus/apiAuth`.
pub trait Api: Send + Sync + 'static {
    /// `Ok(None)`: the method does not exist. `Ok(Some(result))`; `Err`: an error reply.
    fn call(&self, method: &str, params: &Map<String, Value>) -> Result<Option<Value>, RpcError>;
}

/// Reads the secret: the first line of `path`, at least 16 characters.
pub fn read_secret(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the JSON-RPC secret file {}: {e}", path.display()))?;
    let secret = text.lines().next().unwrap_or("").trim().to_string();
    if secret.chars().count() < 16 {
        anyhow::bail!(
            "the JSON-RPC secret in {} is too short: its first line needs at least 16 characters \
             (e.g. `openssl rand -base64 24 > {}`)",
            path.display(),
            path.display()
        );
    }
    Ok(secret)
}

/// Listens on `bind` and serves every connection with `api`. Runs until the process exits.
pub fn start(bind: SocketAddr, secret: String, api: Arc<dyn Api>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(bind)?;
    let local = listener.local_addr()?;
    let open = Arc::new(AtomicUsize::new(0));
    let secret = Arc::new(secret);
    std::thread::Builder::new().name("jsonrpc-accept".into()).spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::SeqCst);
                warn!("JSON-RPC: connection refused, {MAX_CONNECTIONS} connections are open");
                continue; // dropped: closed
            }
            let (open, secret, api) = (open.clone(), secret.clone(), api.clone());
            let spawned = std::thread::Builder::new().name("jsonrpc-conn".into()).spawn(move || {
                let _ = serve_connection(stream, &secret, &*api);
                open.fetch_sub(1, Ordering::SeqCst);
            });
            if spawned.is_err() {
                warn!("JSON-RPC: cannot start a connection thread");
            }
        }
    })?;
    info!(%local, "JSON-RPC listening");
    Ok(local)
}

fn serve_connection(stream: TcpStream, secret: &str, api: &dyn Api) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut authenticated = false;
    let opened = Instant::now();
    let mut line = Vec::new();
    loop {
        match read_line(&mut reader, &mut line) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if !authenticated && opened.elapsed() > AUTH_DEADLINE {
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(e),
        }
        let (reply, keep) = handle_line(&line, secret, &mut authenticated, api);
        line.clear();
        if let Some(reply) = reply {
            let mut text = reply.to_string();
            text.push('\n');
            writer.write_all(text.as_bytes())?;
        }
        if !keep {
            return Ok(());
        }
    }
}

/// Appends bytes up to and including the next newline to `line`; false at end of stream. A line
/// over `MAX_LINE` is an error. Keeps what was read when the read times out.
fn read_line(reader: &mut BufReader<TcpStream>, line: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(false);
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(i) => {
                line.extend_from_slice(&available[..=i]);
                reader.consume(i + 1);
                return Ok(true);
            }
            None => {
                let n = available.len();
                line.extend_from_slice(available);
                reader.consume(n);
                if line.len() > MAX_LINE {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "JSON-RPC line too long"));
                }
            }
        }
    }
}

/// Answers one line: the reply (if any) and whether the connection stays open.
pub fn handle_line(line: &[u8], secret: &str, authenticated: &mut bool, api: &dyn Api) -> (Option<Value>, bool) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return (Some(error_reply(None, &RpcError::new(-32700, "Parse error: Blank line received"))), true);
    }
    let invalid_json =
        || (Some(error_reply(None, &RpcError::new(-32700, "Parse error: Invalid JSON received"))), false);
    let Ok(document) = serde_json::from_str::<Value>(text) else { return invalid_json() };
    match document {
        Value::Object(request) => (Some(handle_request(&request, secret, authenticated, api)), true),
        Value::Array(batch) if batch.is_empty() => {
            let error = RpcError::new(-32600, "Invalid request: Empty batch request encountered");
            (Some(error_reply(None, &error)), false)
        }
        Value::Array(batch) => {
            if !batch.iter().all(Value::is_object) {
                return (None, false);
            }
            let replies = batch
                .iter()
                .filter_map(Value::as_object)
                .map(|request| handle_request(request, secret, authenticated, api))
                .collect();
            (Some(Value::Array(replies)), true)
        }
        _ => invalid_json(),
    }
}

fn handle_request(request: &Map<String, Value>, secret: &str, authenticated: &mut bool, api: &dyn Api) -> Value {
    let id = Some(request.get("id").unwrap_or(&Value::Null));
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return error_reply(id, &RpcError::new(-32600, "Invalid request: The `method` member is not a string"));
    };
    let Some(params) = request.get("params").and_then(Value::as_object) else {
        return error_reply(id, &RpcError::invalid_params("The `params` member is not an object"));
    };
    if method == "jamulus/apiAuth" {
        let Some(given) = params.get("secret").and_then(Value::as_str) else {
            return error_reply(id, &RpcError::invalid_params("secret is not a string"));
        };
        if constant_time_eq(given.as_bytes(), secret.as_bytes()) {
            *authenticated = true;
            info!("JSON-RPC: accepted valid authentication secret");
            return result_reply(id, json!("ok"));
        }
        warn!("JSON-RPC: rejected invalid authentication secret");
        return error_reply(id, &RpcError::new(400, "Authentication failed."));
    }
    if !*authenticated {
        let error = RpcError::new(401, "Unauthenticated: Please authenticate using jamulus/apiAuth first");
        return error_reply(id, &error);
    }
    match api.call(method, params) {
        Ok(Some(result)) => result_reply(id, result),
        Ok(None) => error_reply(id, &RpcError::new(-32601, "Method not found")),
        Err(error) => error_reply(id, &error),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Keys in alphabetical order, as Qt writes them.
fn result_reply(id: Option<&Value>, result: Value) -> Value {
    let mut reply = Map::new();
    if let Some(id) = id {
        reply.insert("id".into(), id.clone());
    }
    reply.insert("jsonrpc".into(), json!("2.0"));
    reply.insert("result".into(), result);
    Value::Object(reply)
}

fn error_reply(id: Option<&Value>, error: &RpcError) -> Value {
    let mut reply = Map::new();
    reply.insert("error".into(), json!({ "code": error.code, "message": error.message }));
    if let Some(id) = id {
        reply.insert("id".into(), id.clone());
    }
    reply.insert("jsonrpc".into(), json!("2.0"));
    Value::Object(reply)
}
