//! Accepting connections, also at the open-files limit. There `accept` fails with EMFILE while the
//! connection stays in the kernel's queue: retried at once that spins, and axum's own listener sleeps
//! a second per connection while the queue fills and clients hang. Instead one spare descriptor is
//! kept open: at the limit it is closed, the waiting connection accepted with it, answered
//! `503 Service Unavailable` (plain HTTP; a TLS client just sees the connection close) and closed, the
//! spare taken again, and the refusal counted. Connections already open are not touched, and new ones
//! are accepted again as soon as descriptors are free.
//!
//! New connections are also paced (`--accept-rate`, a token bucket of one second's worth): a
//! reconnect storm then waits in the kernel's queue, which costs nothing, instead of taking the
//! processor from the sockets already connected with handshakes. And per client address
//! (`--accept-rate-per-address`, see [`AddressPace`]): a connection from an address over its pace is
//! accepted and held back here until its turn (so that it does not hold up other addresses' in the
//! kernel's queue), or refused like one at the open-files limit when its turn is too far ahead or too
//! many are held back already.

use crate::address_pace::AddressPace;
use crate::metrics::Counters;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// Linux `ENFILE` (the system's open-files table is full) and `EMFILE` (this process's limit).
const ENFILE: i32 = 23;
const EMFILE: i32 = 24;
/// The pause after an accept error that is not about descriptors (`ENOBUFS`, `ENOMEM`, …), and when
/// no spare descriptor could be had.
const PAUSE: Duration = Duration::from_millis(50);
/// The most connections held back for their address's pace at once; more are refused.
const MAX_HELD: usize = 1024;
/// How long a refused connection's request is waited for before the answer (a client that sends
/// its request at once costs no wait; on a loaded machine 50 ms was too short).
const LINGER: Duration = Duration::from_millis(500);
/// At most one warning this often while connections are being refused.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What a plain HTTP client is told when refused (a WebSocket client sees this status).
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 40\r\nRetry-After: 5\r\nConnection: close\r\n\r\nthe lobby is full now: try again later\r\n";

/// What a plain HTTP client from an address over its pace is told when refused.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 57\r\nRetry-After: 10\r\nConnection: close\r\n\r\ntoo many connections from your address: try again later\r\n";

/// The listening socket with its spare descriptor.
pub(crate) struct Admission {
    tcp: TcpListener,
    /// Per address: the schedules, and the connections held back by when they are due (and order).
    per_address: Option<AddressPace>,
    held: BTreeMap<(Instant, u64), (TcpStream, SocketAddr)>,
    held_seq: u64,
    spare: Option<File>,
    /// Refused connections get the 503 answer (not for TLS).
    answer_http: bool,
    counters: Arc<Counters>,
    warned: Option<Instant>,
    pace: Pace,
}

/// A token bucket for accepts: `rate` a second, up to one second's worth at once; 0: no pacing.
#[derive(Debug)]
struct Pace {
    rate: f64,
    tokens: f64,
    refilled: Instant,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        Pace { rate, tokens: rate, refilled: Instant::now() }
    }

    /// Waits until one more connection may be accepted, and counts it.
    async fn next(&mut self, counters: &Counters) {
        if self.rate <= 0.0 {
            return;
        }
        let mut waited = false;
        loop {
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
            self.refilled = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                if waited {
                    counters.paced.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            waited = true;
            tokio::time::sleep(Duration::from_secs_f64((1.0 - self.tokens) / self.rate)).await;
        }
    }
}

fn take_spare() -> Option<File> {
    File::open("/dev/null").ok()
}

impl Admission {
    /// `accept_rate`: connections accepted a second at most (0: any number); `per_address`: from one
    /// address (0: any number).
    pub(crate) fn new(
        tcp: TcpListener,
        answer_http: bool,
        counters: Arc<Counters>,
        accept_rate: f64,
        per_address: f64,
    ) -> Self {
        Admission {
            tcp,
            per_address: AddressPace::new(per_address),
            held: BTreeMap::new(),
            held_seq: 0,
            spare: take_spare(),
            answer_http,
            counters,
            warned: None,
            pace: Pace::new(accept_rate),
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The next connection to serve: one held back whose turn came, or a new one within its
    /// address's pace.
    pub(crate) async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        if self.per_address.is_none() {
            return self.accept_new().await;
        }
        loop {
            let due = self.held.first_key_value().map(|((at, _), _)| *at);
            let held_due = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let (tcp, peer) = tokio::select! {
                biased;
                () = held_due => {
                    let Some((_, accepted)) = self.held.pop_first() else { continue };
                    return accepted;
                }
                accepted = self.accept_new() => accepted,
            };
            let now = Instant::now();
            let Some(pace) = self.per_address.as_mut() else { return (tcp, peer) };
            match pace.admit(peer.ip(), now) {
                Some(at) if at <= now => return (tcp, peer),
                Some(at) if self.held.len() < MAX_HELD => {
                    self.counters.held.fetch_add(1, Ordering::Relaxed);
                    self.held_seq += 1;
                    self.held.insert((at, self.held_seq), (tcp, peer));
                }
                _ => {
                    self.counters.refused_address.fetch_add(1, Ordering::Relaxed);
                    self.warn(
                        "lobby: refusing connections from an address that opens them faster than \
                         --accept-rate-per-address allows (no address is logged)",
                    );
                    if self.answer_http {
                        // not waited for here: other addresses' connections are accepted meanwhile
                        tokio::spawn(answer_and_close(tcp, TOO_MANY));
                    }
                }
            }
        }
    }

    /// The next new connection this process has room for, within the accept rate.
    async fn accept_new(&mut self) -> (TcpStream, SocketAddr) {
        self.pace.next(&self.counters).await;
        loop {
            match self.tcp.accept().await {
                Ok(accepted) => {
                    if self.spare.is_none() {
                        self.spare = take_spare();
                    }
                    return accepted;
                }
                // the client gave up before it was accepted
                Err(e) if is_connection_error(&e) => {}
                Err(e) if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) => self.refuse(&e).await,
                Err(e) => {
                    self.counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                    self.warn(&format!("lobby: accepting a connection failed, pausing briefly: {e}"));
                    tokio::time::sleep(PAUSE).await;
                }
            }
        }
    }

    /// At the open-files limit: the first waiting connection is accepted with the spare descriptor and
    /// refused.
    async fn refuse(&mut self, error: &io::Error) {
        self.warn(&format!(
            "lobby: refusing new connections: no file descriptor left ({error}); the connections open keep \
             working. Raise the open-files limit (LimitNOFILE=, ulimit -n) for more users"
        ));
        let Some(spare) = self.spare.take() else {
            // nothing to accept it with: wait for descriptors rather than spin
            self.spare = take_spare();
            if self.spare.is_none() {
                tokio::time::sleep(PAUSE).await;
            }
            return;
        };
        drop(spare);
        // only a connection already waiting: never wait here with the spare given up
        let waiting = std::future::poll_fn(|cx| Poll::Ready(self.tcp.poll_accept(cx))).await;
        if let Poll::Ready(Ok((stream, _))) = waiting {
            self.counters.refused_no_fd.fetch_add(1, Ordering::Relaxed);
            if self.answer_http {
                answer_and_close(stream, FULL).await;
            }
        }
        self.spare = take_spare();
    }

    fn warn(&mut self, message: &str) {
        let now = Instant::now();
        if self.warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            self.warned = Some(now);
            tracing::warn!("{message}");
        }
    }
}

/// Answers a refused connection and closes it.
async fn answer_and_close(stream: TcpStream, answer: &[u8]) {
    // Wait a moment for the whole request head and read it, so that closing does not reset the
    // connection and throw the answer away: a request that arrives after the close is answered with a
    // reset, and a client may send its request in pieces (answered after the first, the rest of it
    // met a closed socket and the client saw "broken pipe" instead of the 503).
    let deadline = tokio::time::Instant::now() + LINGER;
    let mut request = [0u8; 2048];
    let mut read = 0;
    while read < request.len() && !head_complete(&request[..read]) {
        if tokio::time::timeout_at(deadline, stream.readable()).await.is_err() {
            break;
        }
        match stream.try_read(&mut request[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
    let _ = stream.try_write(answer);
}

/// Whether the bytes read so far hold a whole HTTP request head (ended by an empty line).
fn head_complete(read: &[u8]) -> bool {
    read.windows(4).any(|w| w == b"\r\n\r\n")
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

impl axum::serve::Listener for Admission {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        Admission::accept(self).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Admission::local_addr(self)
    }
}
