//! The TCP side of JSON-RPC: accepts connections, reads one request line at a time, writes the
//! replies, and sends notifications to every authenticated connection ([`Notifier`]).
//!
//! Each connection has its own thread and talks to the jam server or client only through command
//! channels (with timeouts), so a slow or hostile peer can delay nobody but itself. At most
//! [`MAX_CONNECTIONS`] connections are served at once; lines longer than [`MAX_LINE`] end the
//! connection, and a connection that has not authenticated within [`AUTH_DEADLINE`] is closed. A
//! peer that does not read what it is sent for [`WRITE_TIMEOUT`] is disconnected.

use super::{handle_line, Api};
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tracing::{info, warn};

pub const MAX_CONNECTIONS: usize = 16;
pub const MAX_LINE: usize = 1 << 20;
pub const AUTH_DEADLINE: Duration = Duration::from_secs(30);
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection's writing half, shared by its own thread (replies) and the [`Notifier`].
type Writer = Arc<Mutex<TcpStream>>;

/// Sends notifications (`{"jsonrpc","method","params"}` lines) to every connection that has
/// authenticated, as Jamulus does. Cloning gives another handle to the same connections.
#[derive(Clone, Default)]
pub struct Notifier {
    listeners: Arc<Mutex<Vec<(u64, Writer)>>>,
}

impl Notifier {
    pub fn notify(&self, method: &str, params: Value) {
        let mut line = json!({ "jsonrpc": "2.0", "method": method, "params": params }).to_string();
        line.push('\n');
        let listeners: Vec<Writer> = lock(&self.listeners).iter().map(|(_, w)| w.clone()).collect();
        for writer in listeners {
            let mut stream = lock(&writer);
            if stream.write_all(line.as_bytes()).is_err() {
                // Too slow or gone: its reading thread sees the shutdown and ends the connection.
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }

    fn add(&self, id: u64, writer: Writer) {
        lock(&self.listeners).push((id, writer));
    }

    fn remove(&self, id: u64) {
        lock(&self.listeners).retain(|(i, _)| *i != id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Listens on `bind` and serves every connection with `api` until the process exits; connections
/// that authenticate get what is sent through `listeners`. Returns the address it listens on.
pub fn start(bind: SocketAddr, secret: String, api: Arc<dyn Api>, listeners: Notifier) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(bind)?;
    let local = listener.local_addr()?;
    let open = Arc::new(AtomicUsize::new(0));
    let secret = Arc::new(secret);
    std::thread::Builder::new().name("jsonrpc-accept".into()).spawn(move || {
        let ids = AtomicU64::new(0);
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::SeqCst);
                warn!("JSON-RPC: connection refused, {MAX_CONNECTIONS} connections are open");
                continue; // dropped: closed
            }
            let (open, secret, api, listeners) = (open.clone(), secret.clone(), api.clone(), listeners.clone());
            let id = ids.fetch_add(1, Ordering::Relaxed);
            let spawned = std::thread::Builder::new().name("jsonrpc-conn".into()).spawn(move || {
                let _ = serve_connection(stream, &secret, &*api, &listeners, id);
                listeners.remove(id);
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

fn serve_connection(stream: TcpStream, secret: &str, api: &dyn Api, listeners: &Notifier, id: u64) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    let writer: Writer = Arc::new(Mutex::new(stream.try_clone()?));
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
        let was_authenticated = authenticated;
        let (reply, keep) = handle_line(&line, secret, &mut authenticated, api);
        line.clear();
        if let Some(reply) = reply {
            let mut text = reply.to_string();
            text.push('\n');
            lock(&writer).write_all(text.as_bytes())?;
        }
        if authenticated && !was_authenticated {
            listeners.add(id, writer.clone());
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
