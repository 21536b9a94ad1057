//! The TURN server on real sockets: one thread, one mio poll over the UDP and TCP listeners, the TCP
//! connections and every relay socket, feeding [`Server`] with the clock and sending what it returns.
//! No protocol decisions here; nothing about a client or peer is logged.

use crate::batch::{RecvBatch, SendQueue, BATCH};
use crate::server::{ClientKey, Event, RelayId, Server, Stats, Transport, Via};
use crate::stun;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{debug, info};

const TCP_LISTENER_BASE: usize = 1 << 16;
const TCP_CONN_BASE: usize = 1 << 20;
const RELAY_BASE: usize = 1 << 32;
/// Bytes queued for one TCP client at most; past that its frames are dropped.
const TCP_QUEUE_LIMIT: usize = 1 << 20;
/// TCP connections at once; further ones are closed as soon as accepted.
const MAX_TCP_CONNECTIONS: usize = 4096;
/// Socket buffers of the listeners (the kernel caps them at net.core.[rw]mem_max).
const LISTENER_BUFFER: usize = 4 << 20;

/// Why the relay cannot run.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error(
        "cannot listen on {addr} ({transport}) (another server may hold the port: stop it or pass --listening-port)"
    )]
    Listen { addr: SocketAddr, transport: &'static str, source: io::Error },
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
    #[error("the event loop failed: {0}")]
    Poll(#[from] io::Error),
}

/// Sockets to open around a [`Server`].
#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// Addresses to listen on, each over UDP and (if `tcp`) TCP.
    pub listen: Vec<SocketAddr>,
    pub tcp: bool,
}

struct Connection {
    stream: TcpStream,
    key: ClientKey,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
}

/// A running TURN relay: its sockets and state machine.
pub struct TurnRelay {
    poll: Poll,
    server: Server,
    udp: Vec<(SocketAddr, UdpSocket)>,
    /// Datagrams to clients queued per UDP listener, sent in one call per poll round.
    udp_out: Vec<SendQueue>,
    tcp: Vec<TcpListener>,
    connections: HashMap<usize, Connection>,
    by_peer: HashMap<(SocketAddr, SocketAddr), usize>,
    next_connection: usize,
    relays: Vec<Option<UdpSocket>>,
    stats: Arc<Mutex<Stats>>,
}

/// Binds UDP on `addr` and, if `tcp`, TCP on the same port. With port 0 the system picks a UDP port that TCP may
/// hold elsewhere: then another port is tried (a few times), so that "any free port" means one free for both.
fn bind_udp_and_tcp(
    addr: SocketAddr,
    tcp: bool,
) -> Result<(std::net::UdpSocket, Option<std::net::TcpListener>), TurnError> {
    let error = |transport, source| TurnError::Listen { addr, transport, source };
    let mut tries = 0;
    loop {
        let udp = std::net::UdpSocket::bind(addr).map_err(|e| error("UDP", e))?;
        if !tcp {
            return Ok((udp, None));
        }
        let local = udp.local_addr().map_err(|e| error("UDP", e))?;
        match std::net::TcpListener::bind(local) {
            Ok(listener) => return Ok((udp, Some(listener))),
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse && tries < 32 => tries += 1,
            Err(e) => return Err(error("TCP", e)),
        }
    }
}

impl TurnRelay {
    /// Opens the listeners; `server` holds the protocol configuration.
    pub fn bind(shell: &ShellConfig, server: Server) -> Result<TurnRelay, TurnError> {
        let poll = Poll::new()?;
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        for (i, addr) in shell.listen.iter().enumerate() {
            let error = |transport, source| TurnError::Listen { addr: *addr, transport, source };
            let (std_socket, std_listener) = bind_udp_and_tcp(*addr, shell.tcp)?;
            let sock = socket2::SockRef::from(&std_socket);
            let _ = sock.set_recv_buffer_size(LISTENER_BUFFER);
            let _ = sock.set_send_buffer_size(LISTENER_BUFFER);
            std_socket.set_nonblocking(true).map_err(|e| error("UDP", e))?;
            let local = std_socket.local_addr().map_err(|e| error("UDP", e))?;
            let mut socket = UdpSocket::from_std(std_socket);
            poll.registry().register(&mut socket, Token(i), Interest::READABLE)?;
            udp.push((local, socket));
            if let Some(std_listener) = std_listener {
                std_listener.set_nonblocking(true).map_err(|e| error("TCP", e))?;
                let mut listener = TcpListener::from_std(std_listener);
                poll.registry().register(&mut listener, Token(TCP_LISTENER_BASE + i), Interest::READABLE)?;
                tcp.push(listener);
            }
        }
        Ok(TurnRelay {
            poll,
            server,
            udp_out: udp.iter().map(|_| SendQueue::default()).collect(),
            udp,
            tcp,
            connections: HashMap::new(),
            by_peer: HashMap::new(),
            next_connection: 0,
            relays: Vec::new(),
            stats: Arc::new(Mutex::new(Stats::default())),
        })
    }

    /// The UDP addresses listened on (TCP uses the same).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp.iter().map(|(a, _)| *a).collect()
    }

    /// Counters, refreshed about twice a second while running.
    pub fn stats(&self) -> Arc<Mutex<Stats>> {
        self.stats.clone()
    }

    /// Serves until `stop` is set (checked at least every 250 ms).
    pub fn run(mut self, stop: &AtomicBool) -> Result<(), TurnError> {
        let mut events = Events::with_capacity(1024);
        let mut batch = RecvBatch::default();
        let mut published = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let wait = self
                .server
                .poll_timeout()
                .map_or(Duration::from_millis(250), |t| t.saturating_duration_since(now))
                .min(Duration::from_millis(250));
            match self.poll.poll(&mut events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            for event in events.iter() {
                let token = event.token().0;
                if token >= RELAY_BASE {
                    self.relay_readable(RelayId((token - RELAY_BASE) as u32), &mut batch);
                } else if token >= TCP_CONN_BASE {
                    self.connection_ready(token, event.is_readable(), event.is_writable());
                } else if token >= TCP_LISTENER_BASE {
                    self.accept(token - TCP_LISTENER_BASE)?;
                } else {
                    self.udp_readable(token, &mut batch);
                }
            }
            self.flush_udp();
            let now = Instant::now();
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
                self.drive(now);
                self.flush_udp();
            }
            if now.duration_since(published) > Duration::from_millis(500) {
                published = now;
                if let Ok(mut stats) = self.stats.lock() {
                    *stats = self.server.stats();
                }
            }
        }
        info!("turn relay stopped");
        Ok(())
    }

    fn udp_readable(&mut self, index: usize, batch: &mut RecvBatch) {
        let Some(local) = self.udp.get(index).map(|(local, _)| *local) else { return };
        self.drain(
            batch,
            |relay| relay.udp.get(index).map(|(_, socket)| socket.as_raw_fd()),
            |relay, now, bytes, from| {
                let key = ClientKey { transport: Transport::Udp, client: from, server: local };
                relay.server.handle_client(now, key, bytes);
            },
        );
    }

    fn relay_readable(&mut self, relay: RelayId, batch: &mut RecvBatch) {
        self.drain(
            batch,
            |shell| shell.relays.get(relay.0 as usize)?.as_ref().map(|socket| socket.as_raw_fd()),
            |shell, now, bytes, from| shell.server.handle_peer(now, relay, from, bytes),
        );
    }

    /// Reads a socket until it is drained, handing each datagram to `handle` and carrying out what the server
    /// asks after each. The socket is looked up again (`fd`) before every read, since handling a datagram can
    /// close it.
    fn drain(
        &mut self,
        batch: &mut RecvBatch,
        fd: impl Fn(&Self) -> Option<RawFd>,
        mut handle: impl FnMut(&mut Self, Instant, &[u8], SocketAddr),
    ) {
        let mut errors = 0;
        loop {
            let Some(fd) = fd(self) else { return };
            let n = match batch.recv(fd) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) if errors < 64 => {
                    errors += 1;
                    continue;
                }
                Err(_) => return,
            };
            let now = Instant::now();
            for i in 0..n {
                let Some((bytes, from)) = batch.get(i) else { continue };
                handle(self, now, bytes, from);
                self.drive(now);
            }
            if n < BATCH {
                return; // drained: the next datagram raises a new edge
            }
        }
    }

    /// Sends the datagrams queued for clients.
    fn flush_udp(&mut self) {
        for ((_, socket), queue) in self.udp.iter().zip(self.udp_out.iter_mut()) {
            if !queue.is_empty() {
                let server = &mut self.server;
                queue.flush(socket.as_raw_fd(), |bytes| server.recycle(bytes));
            }
        }
    }

    fn accept(&mut self, index: usize) -> Result<(), TurnError> {
        loop {
            let Some(listener) = self.tcp.get(index) else { return Ok(()) };
            let (mut stream, client) = match listener.accept() {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(_) => return Ok(()),
            };
            if self.connections.len() >= MAX_TCP_CONNECTIONS {
                continue; // dropped: closed at once
            }
            let Ok(server) = stream.local_addr() else { continue };
            let _ = stream.set_nodelay(true);
            let id = TCP_CONN_BASE + self.next_connection;
            self.next_connection = (self.next_connection + 1) % (RELAY_BASE - TCP_CONN_BASE);
            self.poll.registry().register(&mut stream, Token(id), Interest::READABLE | Interest::WRITABLE)?;
            let key = ClientKey { transport: Transport::Tcp, client, server };
            self.by_peer.insert((client, server), id);
            self.connections.insert(id, Connection { stream, key, inbox: Vec::new(), outbox: Vec::new() });
            debug!("tcp client connected");
        }
    }

    fn connection_ready(&mut self, id: usize, readable: bool, writable: bool) {
        let mut closed = false;
        let mut frames = Vec::new();
        if let Some(c) = self.connections.get_mut(&id) {
            if readable {
                let mut chunk = [0u8; 16384];
                loop {
                    match c.stream.read(&mut chunk) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        Ok(n) => c.inbox.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => {
                            closed = true;
                            break;
                        }
                    }
                }
                let mut at = 0;
                while let Some(len) = c.inbox.get(at..).and_then(stun::frame_len) {
                    let Some(frame) = c.inbox.get(at..at + len) else { break };
                    frames.push(frame.to_vec());
                    at += len;
                }
                c.inbox.drain(..at);
            }
            if writable && !c.outbox.is_empty() {
                closed |= flush_stream(c);
            }
        }
        let key = self.connections.get(&id).map(|c| c.key);
        if let Some(key) = key {
            let now = Instant::now();
            for frame in frames {
                self.server.handle_client(now, key, &frame);
            }
            self.drive(now);
        }
        if closed {
            self.close_connection(id);
        }
    }

    fn close_connection(&mut self, id: usize) {
        if let Some(mut c) = self.connections.remove(&id) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.by_peer.remove(&(c.key.client, c.key.server));
            self.server.client_closed(c.key);
            self.drive(Instant::now());
        }
    }

    /// Sends every transmit and carries out every event the server has queued.
    fn drive(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(t) = self.server.poll_transmit() {
                busy = true;
                self.send(t.via, t.to, t.bytes);
            }
            while let Some(event) = self.server.poll_event() {
                busy = true;
                match event {
                    Event::OpenRelay { relay, addr } => {
                        let opened = self.open_relay(relay, addr).is_ok();
                        self.server.relay_opened(now, relay, opened);
                    }
                    Event::CloseRelay { relay } => {
                        if let Some(mut socket) = self.relays.get_mut(relay.0 as usize).and_then(Option::take) {
                            let _ = self.poll.registry().deregister(&mut socket);
                        }
                    }
                }
            }
            if !busy {
                return;
            }
        }
    }

    fn open_relay(&mut self, relay: RelayId, addr: SocketAddr) -> io::Result<()> {
        let mut socket = UdpSocket::bind(addr)?;
        self.poll.registry().register(&mut socket, Token(RELAY_BASE + relay.0 as usize), Interest::READABLE)?;
        let index = relay.0 as usize;
        if self.relays.len() <= index {
            self.relays.resize_with(index + 1, || None);
        }
        if let Some(slot) = self.relays.get_mut(index) {
            *slot = Some(socket);
        }
        Ok(())
    }

    fn send(&mut self, via: Via, to: SocketAddr, bytes: Vec<u8>) {
        match via {
            Via::Relay(relay) => {
                if let Some(Some(socket)) = self.relays.get(relay.0 as usize) {
                    let _ = socket.send_to(&bytes, to);
                }
            }
            Via::Client(key) if key.transport == Transport::Udp => {
                let Some(index) = self.udp.iter().position(|(local, _)| *local == key.server) else { return };
                let (Some((_, socket)), Some(queue)) = (self.udp.get(index), self.udp_out.get_mut(index)) else {
                    return;
                };
                queue.push(to, bytes);
                if queue.len() >= 64 {
                    let server = &mut self.server;
                    queue.flush(socket.as_raw_fd(), |bytes| server.recycle(bytes));
                }
                return;
            }
            Via::Client(key) => {
                let Some(id) = self.by_peer.get(&(key.client, key.server)).copied() else { return };
                let Some(c) = self.connections.get_mut(&id) else { return };
                if c.outbox.len() + bytes.len() > TCP_QUEUE_LIMIT {
                    return;
                }
                c.outbox.extend_from_slice(&bytes);
                if flush_stream(c) {
                    self.close_connection(id);
                }
            }
        }
        self.server.recycle(bytes);
    }
}

/// Writes what the connection can take now; true if it failed for good.
fn flush_stream(c: &mut Connection) -> bool {
    while !c.outbox.is_empty() {
        match c.stream.write(&c.outbox) {
            Ok(0) => return true,
            Ok(n) => {
                c.outbox.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    false
}

/// A random key for the server's nonces (from the operating system).
pub fn random_nonce_key() -> Result<[u8; 20], TurnError> {
    let mut key = [0u8; 20];
    getrandom::fill(&mut key).map_err(|e| TurnError::Random(e.to_string()))?;
    Ok(key)
}

/// Seconds since 1970 now (for [`Server::new`]).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
