//! A flood of hostile datagrams for the reliability tests: sent at a fixed rate from 256 sockets on eight
//! loopback addresses, a quarter random bytes, the rest the structured kinds the test gives.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sends `rate` datagrams a second to `target` for `duration` (or until `stop`), counting them in `sent`: a
/// quarter random bytes of random length, the rest taken from `kinds` in turn.
pub fn flood(
    target: SocketAddr,
    kinds: &[Vec<u8>],
    rate: u64,
    duration: Duration,
    stop: &AtomicBool,
    sent: &AtomicU64,
) {
    let sockets: Vec<UdpSocket> = (0..256u32)
        .filter_map(|i| {
            UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + (i % 8) as u8)), 0)).ok()
        })
        .collect();
    assert!(sockets.len() >= 200, "could not open the flood's sockets");
    assert!(!kinds.is_empty(), "no kinds of datagram to flood with");
    let start = Instant::now();
    let mut n: u64 = 0;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    while start.elapsed() < duration && !stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        if n >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        while n < due {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let socket = &sockets[(seed % sockets.len() as u64) as usize];
            let bytes: Vec<u8> = match n % 8 {
                0 | 1 => (0..(seed >> 8) % 600 + 1).map(|i| (seed >> (i % 56)) as u8).collect(),
                k => kinds[(k as usize + (seed as usize >> 3)) % kinds.len()].clone(),
            };
            let _ = socket.send_to(&bytes, target);
            n += 1;
        }
        sent.store(n, Ordering::Relaxed);
    }
    sent.store(n, Ordering::Relaxed);
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
