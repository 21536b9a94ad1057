//! A bad network between one client and a server, in user space: a UDP relay that drops, delays and (through
//! varying delays) reorders datagrams in both directions, like `tc netem loss P delay D J`. Used where the
//! kernel has no netem (this project's VMs: `CONFIG_NET_SCH_NETEM is not set`), and deterministic (seeded).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the link does to every datagram; `loss_permille` can change while it runs.
pub struct Impairment {
    /// Datagrams dropped, per thousand.
    pub loss_permille: AtomicU32,
    /// One-way delay and its spread: each datagram waits `delay ± jitter` (uniform).
    pub delay: Duration,
    pub jitter: Duration,
    /// Datagrams passed and dropped (both directions).
    pub passed: AtomicU64,
    pub dropped: AtomicU64,
    /// Every datagram delivered to the client, when `capture` is on (what the client's network saw).
    pub capture: AtomicBool,
    pub to_client: std::sync::Mutex<Vec<Vec<u8>>>,
}

/// A running impaired link: clients send to [`ImpairedLink::address`], the link forwards to the server.
pub struct ImpairedLink {
    pub impairment: Arc<Impairment>,
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ImpairedLink {
    /// A link to `server` with `loss_permille` loss and `delay ± jitter`.
    pub fn start(server: SocketAddr, loss_permille: u32, delay: Duration, jitter: Duration, seed: u64) -> ImpairedLink {
        let front = UdpSocket::bind("127.0.0.1:0").expect("the link's client side");
        let back = UdpSocket::bind("127.0.0.1:0").expect("the link's server side");
        front.set_nonblocking(true).expect("non-blocking");
        back.set_nonblocking(true).expect("non-blocking");
        let address = front.local_addr().expect("an address");
        let impairment = Arc::new(Impairment {
            loss_permille: AtomicU32::new(loss_permille),
            delay,
            jitter,
            passed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            capture: AtomicBool::new(false),
            to_client: std::sync::Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (impairment, stop) = (impairment.clone(), stop.clone());
            std::thread::spawn(move || relay(&front, &back, server, &impairment, &stop, seed))
        };
        ImpairedLink { impairment, address, stop, thread: Some(thread) }
    }

    /// Where the client must send.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn set_loss_permille(&self, permille: u32) {
        self.impairment.loss_permille.store(permille, Ordering::Relaxed);
    }
}

impl Drop for ImpairedLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A datagram waiting for its time: (when, order of arrival, towards the server?, bytes).
type Held = Reverse<(Instant, u64, bool, Vec<u8>)>;

fn relay(front: &UdpSocket, back: &UdpSocket, server: SocketAddr, how: &Impairment, stop: &AtomicBool, seed: u64) {
    let mut client: Option<SocketAddr> = None;
    let mut held: BinaryHeap<Held> = BinaryHeap::new();
    let mut random = seed | 1;
    let mut next = || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let mut order = 0u64;
    let mut buf = [0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut arrived = Vec::new();
        while let Ok((n, from)) = front.recv_from(&mut buf) {
            client = Some(from);
            arrived.push((true, buf[..n].to_vec()));
        }
        while let Ok((n, from)) = back.recv_from(&mut buf) {
            if from == server {
                arrived.push((false, buf[..n].to_vec()));
            }
        }
        for (to_server, bytes) in arrived {
            if next() % 1000 < u64::from(how.loss_permille.load(Ordering::Relaxed)) {
                how.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let spread = how.jitter.as_micros() as u64;
            let offset = if spread == 0 { 0 } else { next() % (2 * spread + 1) };
            let wait = (how.delay + Duration::from_micros(offset)).saturating_sub(how.jitter);
            order += 1;
            held.push(Reverse((now + wait, order, to_server, bytes)));
        }
        while held.peek().is_some_and(|Reverse((at, ..))| *at <= now) {
            let Some(Reverse((_, _, to_server, bytes))) = held.pop() else { break };
            let sent = if to_server {
                back.send_to(&bytes, server)
            } else if let Some(client) = client {
                if how.capture.load(Ordering::Relaxed) {
                    how.to_client.lock().unwrap_or_else(|e| e.into_inner()).push(bytes.clone());
                }
                front.send_to(&bytes, client)
            } else {
                continue;
            };
            if sent.is_ok() {
                how.passed.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_micros(300));
    }
}
