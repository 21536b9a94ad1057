//! The lobby tests' side: starts `tutti lobby` (or `redis-server`) as a child process on a free
//! loopback port and stops it by PID (also when the test panics), reads its `/stats` counts, and a tiny
//! Socket.IO v5 / Engine.IO v4 client over a WebSocket that records every event it receives.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_tungstenite::tungstenite::Message;

/// A running `tutti lobby`, killed on drop.
pub struct Lobby {
    child: Child,
    pub addr: SocketAddr,
    /// `http` or `https` (with `--tls-cert`).
    pub scheme: &'static str,
}

impl Lobby {
    /// `tutti lobby --listen 127.0.0.1:0 ARGS…`, waiting for the address it prints.
    pub fn start(args: &[&str]) -> Lobby {
        Self::start_in(args, &std::env::temp_dir())
    }

    /// The same with the working directory `dir`.
    pub fn start_in(args: &[&str], dir: &Path) -> Lobby {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
        command.args(["lobby", "--listen", "127.0.0.1:0"]).args(args).current_dir(dir);
        Self::spawn(command)
    }

    /// Runs a prepared command (e.g. `tutti` under strace) whose stdout says where it listens.
    pub fn spawn(mut command: Command) -> Lobby {
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().expect("start tutti lobby");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("read tutti lobby's first line");
        let line = line.trim();
        let (scheme, rest) = match line.strip_prefix("tutti lobby: listening on https://") {
            Some(rest) => ("https", Some(rest)),
            None => ("http", line.strip_prefix("tutti lobby: listening on http://")),
        };
        let addr = rest.and_then(|rest| rest.trim_end_matches('/').parse().ok()).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("tutti lobby did not say where it listens: {line:?}")
        });
        // keep draining stdout so that the child never blocks on a full pipe
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Lobby { child, addr, scheme }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The PID of the child's own child that runs the `tutti` binary (the one `strace` traces;
    /// strace's short-lived probe children are not it).
    pub fn grandchild(&self) -> u32 {
        let pid = self.child.id();
        let tutti = std::fs::canonicalize(env!("CARGO_BIN_EXE_tutti")).expect("the tutti binary");
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .find(|child: &u32| std::fs::read_link(format!("/proc/{child}/exe")).is_ok_and(|exe| exe == tutti))
            .expect("the traced tutti runs")
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// `GET path`, the body.
    pub fn get(&self, path: &str) -> String {
        http_get(self.addr, path).1
    }

    /// The lobby's counts: sockets, waiting, pairs.
    pub fn stats(&self) -> Value {
        serde_json::from_str(&self.get("/stats")).expect("stats are JSON")
    }

    /// Waits until the counts equal `want` (they settle a moment after sockets close).
    pub fn wait_stats(&self, want: Value, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let stats = self.stats();
            if stats == want {
                return;
            }
            assert!(Instant::now() < deadline, "lobby counts stayed {stats}, expected {want}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// SIGKILL: the process dies at once, cleaning up nothing.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by name (`STOP`, `CONT`, …).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.terminate_pid(self.child.id())
    }

    /// SIGTERM to `pid` (the process itself, or the one traced by it), then waits for our child's exit.
    pub fn terminate_pid(&mut self, pid: u32) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().unwrap()
    }
}

impl Drop for Lobby {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `tutti registry` on a free loopback port with its own data directory (no rate limit),
/// killed on drop.
pub struct Registry {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = std::env::temp_dir().join(format!("tutti-lobby-registry-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tutti"))
            .args(["registry", "--listen", "127.0.0.1:0", "--registrations-per-minute", "0", "--data-dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tutti registry");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = loop {
            line.clear();
            assert!(Instant::now() < deadline, "tutti registry did not say where it listens");
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!("tutti registry stopped before listening");
            }
            if let Some(addr) = line
                .trim()
                .strip_prefix("tutti registry: listening on http://")
                .and_then(|rest| rest.trim_end_matches('/').parse().ok())
            {
                break addr;
            }
        };
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Registry { child, addr, dir }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL: the registry is down from now on.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/1.1 request with an optional body and extra header lines: status code, head, body.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, String, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).to_string();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// A plain HTTP/1.1 GET: status line and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the lobby");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_string(), body.to_string())
}

/// A free loopback TCP port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `redis-server` of its own on a free loopback port, with no persistence, killed on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Redis {
    pub fn start() -> Redis {
        assert!(
            Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
            "redis-server is needed: run ./scripts/test.sh, which installs it"
        );
        // The port was free when picked; if another process takes it before redis-server binds it,
        // redis-server exits, and another port is tried.
        for _ in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("tutti-lobby-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            let mut redis = Redis { child, port, dir };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !redis.answers_ping() {
                if redis.child.try_wait().is_ok_and(|status| status.is_some()) {
                    break;
                }
                assert!(Instant::now() < deadline, "redis-server did not answer on {port}");
                std::thread::sleep(Duration::from_millis(20));
            }
            if redis.child.try_wait().is_ok_and(|status| status.is_none()) {
                return redis;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Whether our redis-server answers PING on its port (not merely whether something listens there).
    fn answers_ping(&self) -> bool {
        let Ok(mut tcp) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
        let mut answer = [0u8; 7];
        tcp.write_all(b"PING\r\n").is_ok() && tcp.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a client's reader task shares with it.
#[derive(Default)]
struct Inbox {
    events: VecDeque<(String, Value)>,
    acks: HashMap<u64, oneshot::Sender<Value>>,
    closed: bool,
}

/// A Socket.IO v5 client (WebSocket transport only), enough for the lobby's events and acks.
pub struct Client {
    out: mpsc::UnboundedSender<Message>,
    inbox: Arc<Mutex<Inbox>>,
    arrived: Arc<Notify>,
    next_ack: u64,
    /// Every event received so far, in order (name, data), for payload checks.
    pub history: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Client {
    /// Connects to the default namespace.
    pub async fn connect(addr: SocketAddr) -> Client {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket to the lobby");
        let (mut sink, mut stream) = ws.split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let arrived = Arc::new(Notify::new());
        let history = Arc::new(Mutex::new(Vec::new()));
        let (connected_tx, connected_rx) = oneshot::channel();
        tokio::spawn(async move {
            while let Some(m) = outgoing.recv().await {
                let close = matches!(m, Message::Close(_));
                if sink.send(m).await.is_err() || close {
                    break;
                }
            }
        });
        {
            let (inbox, arrived, history, out) = (inbox.clone(), arrived.clone(), history.clone(), out.clone());
            tokio::spawn(async move {
                let mut connected = Some(connected_tx);
                while let Some(Ok(message)) = stream.next().await {
                    let Message::Text(text) = message else { continue };
                    let text = text.as_str();
                    match text.as_bytes().first() {
                        Some(b'0') => {
                            let _ = out.send(Message::text("40"));
                        }
                        Some(b'2') => {
                            let _ = out.send(Message::text("3"));
                        }
                        Some(b'4') => {
                            let body = &text[2..];
                            match text.as_bytes().get(1) {
                                Some(b'0') => {
                                    if let Some(c) = connected.take() {
                                        let _ = c.send(());
                                    }
                                }
                                // the server disconnected the socket: close, as the page and socket.io-client do
                                Some(b'1') => {
                                    let _ = out.send(Message::Close(None));
                                    break;
                                }
                                Some(b'2') => {
                                    let Ok(Value::Array(args)) = serde_json::from_str::<Value>(body) else { continue };
                                    let name = args.first().and_then(Value::as_str).unwrap_or("").to_string();
                                    let data = args.get(1).cloned().unwrap_or(Value::Null);
                                    history.lock().unwrap().push((name.clone(), data.clone()));
                                    inbox.lock().unwrap().events.push_back((name, data));
                                    arrived.notify_waiters();
                                }
                                Some(b'3') => {
                                    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
                                    let id: u64 = body[..digits].parse().unwrap_or(0);
                                    let args: Value = serde_json::from_str(&body[digits..]).unwrap_or(Value::Null);
                                    let reply = args.get(0).cloned().unwrap_or(Value::Null);
                                    if let Some(tx) = inbox.lock().unwrap().acks.remove(&id) {
                                        let _ = tx.send(reply);
                                    }
                                }
                                _ => {}
                            }
                        }
                        _ => {}
                    }
                }
                let mut inbox = inbox.lock().unwrap();
                inbox.closed = true;
                inbox.acks.clear();
                drop(inbox);
                arrived.notify_waiters();
            });
        }
        tokio::time::timeout(Duration::from_secs(10), connected_rx)
            .await
            .expect("Socket.IO connect within 10 s")
            .expect("Socket.IO connect");
        Client { out, inbox, arrived, next_ack: 0, history }
    }

    /// Emits an event without asking for an ack.
    pub fn emit(&self, name: &str, data: Value) {
        let args = if data.is_null() { json!([name]) } else { json!([name, data]) };
        let _ = self.out.send(Message::text(format!("42{args}")));
    }

    /// Emits an event and waits for its ack (`Null` if the socket closed first).
    pub async fn call(&mut self, name: &str, data: Value) -> Value {
        self.next_ack += 1;
        let id = self.next_ack;
        let (tx, rx) = oneshot::channel();
        {
            let mut inbox = self.inbox.lock().unwrap();
            if inbox.closed {
                return Value::Null;
            }
            inbox.acks.insert(id, tx);
        }
        let args = if data.is_null() { json!([name]) } else { json!([name, data]) };
        let _ = self.out.send(Message::text(format!("42{id}{args}")));
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .unwrap_or_else(|_| panic!("no ack for {name} within 10 s"))
            .unwrap_or(Value::Null)
    }

    /// The next event called `name` (earlier events of other names stay queued), or `None` on timeout.
    pub async fn next_event(&self, name: &str, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.arrived.notified();
            {
                let mut inbox = self.inbox.lock().unwrap();
                if let Some(i) = inbox.events.iter().position(|(n, _)| n == name) {
                    return inbox.events.remove(i).map(|(_, d)| d);
                }
                if inbox.closed {
                    return None;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Like [`Client::next_event`], panicking with `what` on timeout.
    pub async fn expect(&self, name: &str, what: &str) -> Value {
        match self.next_event(name, Duration::from_secs(10)).await {
            Some(v) => v,
            None => panic!("{what}: no `{name}` within 10 s"),
        }
    }

    /// Whether the server closed the connection (waits up to `within`).
    pub async fn closed_within(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.arrived.notified();
            if self.inbox.lock().unwrap().closed {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inbox.lock().unwrap().closed;
            }
        }
    }

    /// Names of the events received so far.
    pub fn seen(&self) -> Vec<String> {
        self.history.lock().unwrap().iter().map(|(n, _)| n.clone()).collect()
    }

    /// Every event received so far, with its data.
    pub fn history(&self) -> Vec<(String, Value)> {
        self.history.lock().unwrap().clone()
    }

    /// Closes the WebSocket.
    pub fn close(self) {
        let _ = self.out.send(Message::Close(None));
    }
}

/// `n` sockets connected at once, spread round robin over `lobbies`, each sending `find` (acked ok)
/// once all are connected (so that one lobby's sockets do not pair among themselves while another's
/// still connect) and waiting until it is matched.
#[allow(dead_code)] // not every lobby test uses it
pub async fn matched_at_once(lobbies: &[SocketAddr], n: usize) -> Vec<Client> {
    let mut joins = Vec::new();
    let everyone = Arc::new(tokio::sync::Barrier::new(n));
    for i in 0..n {
        let addr = lobbies[i % lobbies.len()];
        let everyone = everyone.clone();
        joins.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            everyone.wait().await;
            assert_eq!(c.call("find", serde_json::json!({})).await, serde_json::json!({ "ok": true }));
            c.expect("matched", "everyone is matched").await;
            c
        }));
    }
    let mut clients = Vec::new();
    for j in joins {
        clients.push(j.await.unwrap());
    }
    clients
}

/// Where a browser test saves its screenshots (`<target>/tmp/NAME`), once Chromium is known to be installed.
pub fn browser_artifacts(name: &str) -> PathBuf {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: run ./scripts/test.sh, which installs chromium");
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// A self-signed P-256 certificate for localhost and 127.0.0.1, made by the `openssl` command line in
/// `dir`: (NAME.pem, NAME.key).
pub fn self_signed_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status();
    assert!(made.is_ok_and(|s| s.success()), "openssl makes a certificate (apt-get install openssl)");
    (cert, key)
}

/// The folder of the Node test scripts, checked to have its npm packages installed.
pub fn js_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lobby_support/js");
    assert!(
        dir.join("node_modules/socket.io-client").is_dir() && dir.join("node_modules/playwright-core").is_dir(),
        "the Node packages of {} are missing: run ./scripts/test.sh (it runs `npm ci` there)",
        dir.display()
    );
    assert!(
        Command::new("node").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
        "node is needed: run ./scripts/test.sh"
    );
    dir
}

/// Runs `node SCRIPT ARGS…` in the test scripts' folder, killed after `within`; (success, output).
pub fn node(script: &str, args: &[&str], within: Duration) -> (bool, String) {
    node_by(Command::new("node"), script, args, within)
}

/// The same with environment variables set (e.g. `NODE_EXTRA_CA_CERTS`).
pub fn node_with_env(script: &str, args: &[&str], env: &[(&str, &Path)], within: Duration) -> (bool, String) {
    let mut command = Command::new("node");
    command.envs(env.iter().copied());
    node_by(command, script, args, within)
}

/// The same with a prepared command that runs node (e.g. `ip netns exec NS node`).
pub fn node_by(mut command: Command, script: &str, args: &[&str], within: Duration) -> (bool, String) {
    let dir = js_dir();
    let mut child = command
        .arg(script)
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    match status {
        Some(s) => (s.success(), output),
        None => (false, format!("{output}\n(node {script} killed after {within:?})")),
    }
}
