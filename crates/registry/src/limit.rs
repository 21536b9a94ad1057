//! Per-source registration limit: a token bucket per IPv4 address or IPv6 /64 (one subscriber's
//! prefix), refilled continuously, with time as an input. Buckets live in memory only and are dropped
//! once full again, so the limiter forgets a source a minute after its last registration.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Sources tracked at most; past that, refilled buckets are dropped, and if none can be, new sources
/// are refused until some refill (a flood from very many sources cannot grow memory without bound).
pub const MAX_SOURCES: usize = 100_000;

/// Registrations per minute per source, as the generic cell rate algorithm keeps them: for each
/// source only the moment its bucket will be full again, in exact integer time.
#[derive(Debug)]
pub struct RegistrationLimit {
    per_minute: u32,
    /// Source → when its bucket is full again (its "theoretical arrival time").
    full_at: HashMap<[u8; 8], Instant>,
}

impl RegistrationLimit {
    /// `per_minute` registrations a minute per source, in bursts of up to that many; 0 means no limit.
    pub fn new(per_minute: u32) -> Self {
        RegistrationLimit { per_minute, full_at: HashMap::new() }
    }

    /// Whether `source` may register now (and if so, counts it).
    pub fn allow(&mut self, now: Instant, source: IpAddr) -> bool {
        self.check(now, source).is_ok()
    }

    /// The same, saying how long to wait when refused.
    pub fn check(&mut self, now: Instant, source: IpAddr) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let interval = Duration::from_secs(60) / self.per_minute;
        let burst = interval * (self.per_minute - 1);
        let key = source_key(source);
        if !self.full_at.contains_key(&key) && self.full_at.len() >= MAX_SOURCES {
            self.forget_refilled(now);
            if self.full_at.len() >= MAX_SOURCES {
                return Err(interval);
            }
        }
        let full_at = self.full_at.get(&key).copied().unwrap_or(now).max(now);
        let ahead = full_at.saturating_duration_since(now);
        if ahead > burst {
            return Err(ahead - burst);
        }
        self.full_at.insert(key, full_at + interval);
        Ok(())
    }

    /// Drops every source whose bucket is full again (it is forgotten).
    pub fn forget_refilled(&mut self, now: Instant) {
        self.full_at.retain(|_, full_at| *full_at > now);
    }

    /// Sources currently remembered.
    pub fn sources(&self) -> usize {
        self.full_at.len()
    }
}

/// An IPv4 address (also IPv4-mapped IPv6), or the /64 of an IPv6 address.
fn source_key(source: IpAddr) -> [u8; 8] {
    let source = match source {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match source {
        IpAddr::V4(v4) => {
            let mut key = [0xff; 8];
            key[4..].copy_from_slice(&v4.octets());
            key
        }
        IpAddr::V6(v6) => {
            let mut key = [0u8; 8];
            key.copy_from_slice(&v6.octets()[..8]);
            key
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_a_minute_then_one_every_six_seconds() {
        let mut limit = RegistrationLimit::new(10);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!((0..15).filter(|_| limit.allow(t0, a)).count(), 10);
        assert!(limit.allow(t0, b), "another source has its own bucket");
        assert_eq!(limit.check(t0 + Duration::from_secs(5), a), Err(Duration::from_secs(1)), "says how long to wait");
        assert!(limit.allow(t0 + Duration::from_secs(6), a));
        assert!(!limit.allow(t0 + Duration::from_secs(7), a));
    }

    #[test]
    fn one_ipv6_prefix_is_one_source_and_mapped_v4_is_v4() {
        let mut limit = RegistrationLimit::new(2);
        let t0 = Instant::now();
        assert!(limit.allow(t0, "2001:db8:1:2::1".parse().unwrap()));
        assert!(limit.allow(t0, "2001:db8:1:2::ffff".parse().unwrap()));
        assert!(!limit.allow(t0, "2001:db8:1:2:abcd::9".parse().unwrap()));
        assert!(limit.allow(t0, "2001:db8:1:3::1".parse().unwrap()));
        assert!(limit.allow(t0, "198.51.100.7".parse().unwrap()));
        assert!(limit.allow(t0, "::ffff:198.51.100.7".parse().unwrap()));
        assert!(!limit.allow(t0, "198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn sources_are_forgotten_once_refilled_and_memory_is_bounded() {
        let mut limit = RegistrationLimit::new(10);
        let t0 = Instant::now();
        assert!(limit.allow(t0, "192.0.2.1".parse().unwrap()));
        assert_eq!(limit.sources(), 1);
        limit.forget_refilled(t0 + Duration::from_secs(5));
        assert_eq!(limit.sources(), 1);
        limit.forget_refilled(t0 + Duration::from_secs(6));
        assert_eq!(limit.sources(), 0);
        for i in 0..MAX_SOURCES as u32 {
            assert!(limit.allow(t0, IpAddr::V4(i.into())));
        }
        assert!(!limit.allow(t0, "2001:db8::1".parse().unwrap()), "full, and nobody has refilled yet");
        assert!(limit.allow(t0 + Duration::from_secs(6), "2001:db8::1".parse().unwrap()), "refilled ones make room");
        assert_eq!(limit.sources(), 1);
    }

    #[test]
    fn zero_means_unlimited() {
        let mut limit = RegistrationLimit::new(0);
        let t0 = Instant::now();
        assert!((0..1000).all(|_| limit.allow(t0, "192.0.2.1".parse().unwrap())));
        assert_eq!(limit.sources(), 0);
    }
}
