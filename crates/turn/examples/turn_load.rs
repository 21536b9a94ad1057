//! Load generator of bench/turn.sh: N TURN allocations over UDP (REST credentials), each with one channel to
//! a UDP echo peer in this process, sending ChannelData of 200-byte payloads (like Opus audio) at RATE packets
//! a second; the peer echoes every packet back through the relay. Reports what the server relayed, the
//! server's CPU per relayed packet (from /proc/PID/stat), round-trip times and the server's memory per
//! allocation. `direct` sends the same traffic to the echo peer without a server: the floor of the RTTs.
//!
//!   turn_load SERVER:PORT ALLOCATIONS RATE SECS SECRET REALM SERVER_PID
//!   turn_load direct ALLOCATIONS RATE SECS

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tutti_turn::batch::{RecvBatch, SendQueue, BATCH};
use tutti_turn::credentials::{long_term_key, rest_credentials};
use tutti_turn::stun::{self, Class, Message, Writer};

const PAYLOAD: usize = 200;
const CHANNEL: u16 = 0x4000;
const WARMUP: Duration = Duration::from_secs(2);

fn main() {
    if let Err(e) = run() {
        eprintln!("turn_load: {e}");
        std::process::exit(1);
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    args.get(i).and_then(|a| a.parse().ok()).ok_or_else(|| format!("argument {i} ({what}) is missing or invalid"))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let direct = args.get(1).is_some_and(|a| a == "direct");
    let n: usize = arg(&args, 2, "allocations")?;
    let rate: f64 = arg(&args, 3, "rate")?;
    let secs: f64 = arg(&args, 4, "seconds")?;
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let peer_addr = peer.local_addr().map_err(|e| e.to_string())?;
    let mut clients = Vec::with_capacity(n);
    let (pid, rss_before) = if direct { (None, 0) } else { (Some(arg::<u32>(&args, 7, "server pid")?), 0) };
    let rss_before = pid.map_or(rss_before, rss_kib);
    let setup_started = Instant::now();
    for i in 0..n {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        if direct {
            socket.connect(peer_addr).map_err(|e| e.to_string())?;
        } else {
            let server: SocketAddr = arg(&args, 1, "server address")?;
            socket.connect(server).map_err(|e| e.to_string())?;
            let secret: String = arg(&args, 5, "secret")?;
            let realm_hint: String = arg(&args, 6, "realm")?;
            allocate(&socket, i, &secret, &realm_hint, peer_addr).map_err(|e| format!("allocation {i}: {e}"))?;
        }
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        clients.push(UdpSocket::from_std(socket));
    }
    let setup_secs = setup_started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = pid.map_or(0, rss_kib);
    peer.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut peer = UdpSocket::from_std(peer);
    let poll = Poll::new().map_err(|e| e.to_string())?;
    for (i, c) in clients.iter_mut().enumerate() {
        poll.registry().register(c, Token(i), Interest::READABLE).map_err(|e| e.to_string())?;
    }
    poll.registry().register(&mut peer, Token(n), Interest::READABLE).map_err(|e| e.to_string())?;
    let r = traffic(poll, &clients, &peer, direct, rate, secs, pid)?;
    let mut rtts = r.rtts;
    rtts.sort_unstable();
    let pct =
        |p: f64| rtts.get(((rtts.len() as f64 * p) as usize).min(rtts.len().saturating_sub(1))).copied().unwrap_or(0);
    let relayed = r.peer_rx + r.client_rx;
    let per_alloc = if n > 0 { (rss_after.saturating_sub(rss_before) as f64 * 1024.0) / n as f64 } else { 0.0 };
    println!(
        "result {{\"allocations\":{n},\"rate\":{rate},\"secs\":{secs},\"setup_secs\":{setup_secs:.2},\"sent\":{},\
         \"relayed\":{relayed},\"relayed_per_s\":{:.0},\"loss\":{:.5},\"server_cpu_s\":{:.3},\"server_cpu_share\":{:.3},\
         \"packets_per_cpu_s\":{:.0},\"cpu_us_per_packet\":{:.3},\"rtt_p50_us\":{},\"rtt_p99_us\":{},\
         \"rss_kib_before\":{rss_before},\"rss_kib_after\":{rss_after},\"bytes_per_allocation\":{per_alloc:.0}}}",
        r.sent,
        relayed as f64 / secs,
        1.0 - r.client_rx as f64 / r.sent.max(1) as f64,
        r.cpu_s,
        r.cpu_s / secs,
        if r.cpu_s > 0.0 { relayed as f64 / r.cpu_s } else { 0.0 },
        if relayed > 0 { r.cpu_s * 1e6 / relayed as f64 } else { 0.0 },
        pct(0.50),
        pct(0.99),
    );
    Ok(())
}

struct Window {
    sent: u64,
    peer_rx: u64,
    client_rx: u64,
    rtts: Vec<u32>,
    cpu_s: f64,
}

/// Sends on schedule and echoes, for the warm-up and then `secs` of measurement.
fn traffic(
    mut poll: Poll,
    clients: &[UdpSocket],
    peer: &UdpSocket,
    direct: bool,
    rate: f64,
    secs: f64,
    pid: Option<u32>,
) -> Result<Window, String> {
    let n = clients.len();
    let step = Duration::from_secs_f64(1.0 / rate / n as f64);
    let start = Instant::now();
    let measure_at = start + WARMUP;
    let end = measure_at + Duration::from_secs_f64(secs);
    let mut events = Events::with_capacity(1024);
    let mut batch = RecvBatch::default();
    let mut echo = SendQueue::default();
    let mut frame = Vec::with_capacity(PAYLOAD + 4);
    let mut w = Window { sent: 0, peer_rx: 0, client_rx: 0, rtts: Vec::new(), cpu_s: 0.0 };
    let mut sends: u64 = 0;
    let mut measuring = false;
    let mut cpu_start = 0.0;
    loop {
        let now = Instant::now();
        if !measuring && now >= measure_at {
            measuring = true;
            cpu_start = pid.map_or(0.0, cpu_seconds);
        }
        if now >= end {
            w.cpu_s = pid.map_or(0.0, cpu_seconds) - cpu_start;
            return Ok(w);
        }
        let due = (now.duration_since(start).as_nanos() / step.as_nanos().max(1)) as u64;
        while sends < due {
            let i = (sends % n as u64) as usize;
            let mut payload = [0u8; PAYLOAD];
            let stamp = now.duration_since(start).as_nanos() as u64;
            payload[..8].copy_from_slice(&stamp.to_be_bytes());
            payload[8] = u8::from(measuring);
            let bytes: &[u8] = if direct {
                &payload
            } else {
                stun::write_channel_data(&mut frame, CHANNEL, &payload, false);
                &frame
            };
            if let Some(c) = clients.get(i) {
                let _ = c.send(bytes);
            }
            sends += 1;
            if measuring {
                w.sent += 1;
            }
        }
        let next = start + step * u32::try_from(sends + 1).unwrap_or(u32::MAX);
        let wait = next.saturating_duration_since(Instant::now()).min(Duration::from_millis(5));
        poll.poll(&mut events, Some(wait)).map_err(|e| e.to_string())?;
        for event in events.iter() {
            let token = event.token().0;
            if token == n {
                // The echo peer: every datagram goes back to the relay it came from, in one sendmmsg per batch.
                loop {
                    let got = batch.recv(peer.as_raw_fd()).unwrap_or(0);
                    for i in 0..got {
                        if let Some((data, from)) = batch.get(i) {
                            if measuring {
                                w.peer_rx += 1;
                            }
                            echo.push(from, data.to_vec());
                        }
                    }
                    echo.flush(peer.as_raw_fd(), drop);
                    if got < BATCH {
                        break;
                    }
                }
                continue;
            }
            let Some(c) = clients.get(token) else { continue };
            loop {
                let got = batch.recv(c.as_raw_fd()).unwrap_or(0);
                let arrived = Instant::now().duration_since(start);
                for i in 0..got {
                    let Some((data, _)) = batch.get(i) else { continue };
                    let payload = if direct { Some(data) } else { stun::parse_channel_data(data).ok().map(|(_, d)| d) };
                    let Some(stamp) = payload.and_then(|p| p.get(..9)) else { continue };
                    if measuring && stamp[8] == 1 {
                        w.client_rx += 1;
                        let mut t = [0u8; 8];
                        t.copy_from_slice(&stamp[..8]);
                        let rtt = arrived.saturating_sub(Duration::from_nanos(u64::from_be_bytes(t)));
                        w.rtts.push(u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX));
                    }
                }
                if got < BATCH {
                    break;
                }
            }
        }
    }
}

/// One request/answer exchange with retransmission.
fn exchange(socket: &std::net::UdpSocket, request: &[u8]) -> io::Result<Vec<u8>> {
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buf = [0u8; 2048];
    for _ in 0..5 {
        socket.send(request)?;
        if let Ok(n) = socket.recv(&mut buf) {
            return Ok(buf.get(..n).unwrap_or(&[]).to_vec());
        }
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, "no answer"))
}

fn code(m: &Message) -> u16 {
    if m.class == Class::Success {
        0
    } else {
        m.get(stun::ERROR_CODE).and_then(stun::error_code).unwrap_or(1)
    }
}

/// Allocate (after the 401 round trip) and bind CHANNEL to the echo peer.
fn allocate(socket: &std::net::UdpSocket, i: usize, secret: &str, realm: &str, peer: SocketAddr) -> Result<(), String> {
    let txid = |k: u8| {
        let mut t = [k; 12];
        t[..8].copy_from_slice(&(i as u64).to_be_bytes());
        t
    };
    let first =
        Writer::new(stun::ALLOCATE, Class::Request, txid(1)).attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).finish();
    let answer = exchange(socket, &first).map_err(|e| e.to_string())?;
    let m = Message::parse(&answer).map_err(|e| e.to_string())?;
    let realm = m.text(stun::REALM).ok().flatten().unwrap_or(realm).to_string();
    let nonce = m.text(stun::NONCE).ok().flatten().ok_or("no NONCE in the 401")?.to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (username, password) = rest_credentials(secret, Duration::from_secs(3600), &format!("load{i}"), now);
    let key = long_term_key(&username, &realm, &password);
    let sign = |w: Writer| {
        w.attr(stun::USERNAME, username.as_bytes())
            .attr(stun::REALM, realm.as_bytes())
            .attr(stun::NONCE, nonce.as_bytes())
            .integrity(&key)
            .finish()
    };
    let request =
        sign(Writer::new(stun::ALLOCATE, Class::Request, txid(2)).attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]));
    let answer = exchange(socket, &request).map_err(|e| e.to_string())?;
    let m = Message::parse(&answer).map_err(|e| e.to_string())?;
    if code(&m) != 0 {
        return Err(format!("Allocate answered {}", code(&m)));
    }
    let number = CHANNEL.to_be_bytes();
    let bind = sign(
        Writer::new(stun::CHANNEL_BIND, Class::Request, txid(3))
            .attr(stun::CHANNEL_NUMBER, &[number[0], number[1], 0, 0])
            .xor_address(stun::XOR_PEER_ADDRESS, peer),
    );
    let answer = exchange(socket, &bind).map_err(|e| e.to_string())?;
    let m = Message::parse(&answer).map_err(|e| e.to_string())?;
    match code(&m) {
        0 => Ok(()),
        c => Err(format!("ChannelBind answered {c}")),
    }
}

/// utime + stime of a process (and its threads), in seconds (USER_HZ = 100).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
