//! A JSON-RPC 2.0 client for Jamulus' `--jsonrpcport`: one compact JSON document per line over TCP
//! (127.0.0.1 only). A reader thread files responses by `id` and queues notifications.

use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long [`JsonRpc::call`] waits for the response.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`JsonRpc::connect`] keeps retrying while the port is not listening yet.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct JsonRpc {
    port: u16,
    writer: Mutex<TcpStream>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    /// One call at a time, so that an error reply without `id` (line-level errors) belongs to it.
    call_lock: Mutex<()>,
    reader: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    responses: HashMap<u64, Value>,
    /// Replies that carry no usable `id` (Jamulus answers line-level errors that way).
    orphans: VecDeque<Value>,
    /// Every notification received, as the whole message (`{"jsonrpc","method","params"}`).
    notifications: Vec<Value>,
    /// Per method: index into `notifications` after the last one `wait_notification` returned.
    cursors: HashMap<String, usize>,
    /// Why the connection ended, once it has.
    closed: Option<String>,
}

impl JsonRpc {
    /// Connects to 127.0.0.1:`port` (retrying for up to 10 s while nothing listens there yet) and
    /// authenticates with `jamulus/apiAuth`. Panics if either fails.
    pub fn connect(port: u16, secret: &str) -> JsonRpc {
        let rpc =
            JsonRpc::open(port, Instant::now() + CONNECT_TIMEOUT, &mut || Ok(())).unwrap_or_else(|e| panic!("{e}"));
        rpc.authenticate(secret);
        rpc
    }

    /// Connects without authenticating, retrying until `deadline`; `check` is asked between
    /// attempts and aborts the wait with its error (e.g. "the process exited").
    pub fn open(
        port: u16,
        deadline: Instant,
        check: &mut dyn FnMut() -> Result<(), String>,
    ) -> Result<JsonRpc, String> {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = loop {
            match TcpStream::connect_timeout(&address, Duration::from_secs(1)) {
                Ok(stream) => break stream,
                Err(e) => {
                    check()?;
                    if Instant::now() >= deadline {
                        return Err(format!("JSON-RPC: nothing accepted connections on {address}: {e}"));
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            }
        };
        stream.set_nodelay(true).map_err(|e| format!("JSON-RPC {address}: {e}"))?;
        let read_half = stream.try_clone().map_err(|e| format!("JSON-RPC {address}: {e}"))?;
        let shared = Arc::new(Shared::default());
        let reader_shared = shared.clone();
        let reader = thread::Builder::new()
            .name(format!("jsonrpc-{port}"))
            .spawn(move || read_loop(read_half, &reader_shared))
            .map_err(|e| format!("JSON-RPC reader thread: {e}"))?;
        Ok(JsonRpc {
            port,
            writer: Mutex::new(stream),
            shared,
            next_id: AtomicU64::new(1),
            call_lock: Mutex::new(()),
            reader: Some(reader),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `jamulus/apiAuth`; panics unless the answer is `"ok"`.
    pub fn authenticate(&self, secret: &str) {
        let reply = self.call("jamulus/apiAuth", json!({ "secret": secret }));
        assert_eq!(reply["result"], "ok", "JSON-RPC authentication on port {} failed: {reply}", self.port);
    }

    /// Sends a request and returns its `id` without waiting for the response.
    pub fn send(&self, method: &str, params: Value) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut line = json!({ "id": id, "jsonrpc": "2.0", "method": method, "params": params }).to_string();
        line.push('\n');
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = writer.write_all(line.as_bytes()).and_then(|()| writer.flush()) {
            panic!("JSON-RPC {method} to 127.0.0.1:{}: write failed: {e}{}", self.port, self.closed_reason());
        }
        id
    }

    /// Waits for the response to request `id` (or for a reply without `id`, which Jamulus sends for
    /// line-level errors). Panics on timeout or when the connection closes first.
    pub fn wait_response(&self, id: u64, method: &str, timeout: Duration) -> Value {
        self.wait_response_or_close(id, timeout).unwrap_or_else(|| match self.closed() {
            Some(reason) => {
                panic!("JSON-RPC {method} on 127.0.0.1:{}: connection closed before the response ({reason})", self.port)
            }
            None => panic!("JSON-RPC {method} on 127.0.0.1:{}: no response within {timeout:?}", self.port),
        })
    }

    /// Like [`JsonRpc::wait_response`], but `None` on timeout or when the connection closes.
    pub fn wait_response_or_close(&self, id: u64, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(reply) = state.responses.remove(&id).or_else(|| state.orphans.pop_front()) {
                return Some(reply);
            }
            let now = Instant::now();
            if now >= deadline || state.closed.is_some() {
                return None;
            }
            state = self.shared.changed.wait_timeout(state, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Calls `method` and returns the whole response object (with `result` or `error`). Panics if
    /// no response comes within 5 s.
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.call_timeout(method, params, CALL_TIMEOUT)
    }

    pub fn call_timeout(&self, method: &str, params: Value, timeout: Duration) -> Value {
        let _serial = self.call_lock.lock().unwrap_or_else(|e| e.into_inner());
        let id = self.send(method, params);
        self.wait_response(id, method, timeout)
    }

    /// The `params` of the first notification `method` that satisfies `pred`, waiting up to
    /// `timeout` for one to arrive. Each method's notifications are read as a stream: the search
    /// starts after the notification of that method this function returned last (earlier ones,
    /// queued before the call, count), and a returned one is not returned again. So after waiting
    /// for `clientListReceived` with ["Alice","Bob"], waiting for ["Alice"] really waits for a later
    /// list. `None` on timeout or when the connection has closed.
    pub fn wait_notification(&self, method: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        let mut scan = state.cursors.get(method).copied().unwrap_or(0);
        loop {
            let candidates: Vec<(usize, Value)> = state.notifications[scan..]
                .iter()
                .enumerate()
                .filter(|(_, n)| n["method"] == method)
                .map(|(i, n)| (scan + i, n.get("params").cloned().unwrap_or(Value::Null)))
                .collect();
            scan = state.notifications.len();
            drop(state); // `pred` runs unlocked: it may call back into this JsonRpc
            if let Some((index, params)) = candidates.into_iter().find(|(_, params)| pred(params)) {
                let mut state = self.lock();
                let cursor = state.cursors.entry(method.to_string()).or_insert(0);
                *cursor = (*cursor).max(index + 1);
                return Some(params);
            }
            state = self.lock();
            while state.notifications.len() == scan {
                let now = Instant::now();
                if now >= deadline || state.closed.is_some() {
                    return None;
                }
                state = self.shared.changed.wait_timeout(state, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
            }
        }
    }

    /// Every notification received so far, as whole messages (`method` and `params`), oldest first.
    pub fn notifications(&self) -> Vec<Value> {
        self.lock().notifications.clone()
    }

    /// Why the connection ended, if it has.
    pub fn closed(&self) -> Option<String> {
        self.lock().closed.clone()
    }

    fn closed_reason(&self) -> String {
        self.closed().map(|r| format!(" (connection closed: {r})")).unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for JsonRpc {
    fn drop(&mut self) {
        let _ = self.writer.lock().unwrap_or_else(|e| e.into_inner()).shutdown(Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The JSON "shape": keys and value types, recursively (array items by their first element).
pub fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

fn read_loop(stream: TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let reason = loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break "closed by the peer".to_string(),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break format!("read error: {e}"),
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(text.trim()) {
            Ok(message) => message,
            Err(e) => json!({ "unparsable": text.trim(), "parseError": e.to_string() }),
        };
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let id = message.get("id").filter(|id| !id.is_null());
        if message.get("method").is_some_and(Value::is_string) && id.is_none() {
            state.notifications.push(message);
        } else if let Some(id) = id.and_then(Value::as_u64) {
            state.responses.insert(id, message);
        } else {
            state.orphans.push_back(message);
        }
        drop(state);
        shared.changed.notify_all();
    };
    shared.state.lock().unwrap_or_else(|e| e.into_inner()).closed = Some(reason);
    shared.changed.notify_all();
}
