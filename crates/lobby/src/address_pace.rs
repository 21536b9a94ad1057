//! New connections paced per client address (`--accept-rate-per-address`): one address may open
//! `rate` connections a second, after a burst of ten seconds' worth; more are held back (accepted,
//! served once their turn comes) rather than refused, up to [`MAX_DELAY`] ahead. A reconnect storm
//! from one address then costs the lobby `rate` handshakes a second, whatever its speed, while
//! other addresses connect as before. Pure: time is passed in.
//!
//! No address is kept: each maps, through a hash keyed at random when the process starts, to one of
//! [`SLOTS`] slots, and only the slot's schedule is stored. Two addresses that share a slot share
//! its pace (with a few abusive addresses, rarely). IPv6 addresses count by their /64, the block one
//! host usually holds.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How many schedules are kept (16 bytes each).
pub(crate) const SLOTS: usize = 4096;
/// The furthest ahead a connection may be held back; one due later is refused.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(10);
/// The burst, in seconds of the rate.
const BURST_SECS: f64 = 10.0;

/// The schedules (generic cell rate algorithm: each slot's theoretical arrival time).
pub(crate) struct AddressPace {
    interval: Duration,
    tolerance: Duration,
    due: Vec<Option<Instant>>,
    keys: RandomState,
}

impl AddressPace {
    /// `rate` connections a second per address; `None` for 0 (no pacing).
    pub(crate) fn new(rate: f64) -> Option<AddressPace> {
        if rate <= 0.0 || !rate.is_finite() {
            return None;
        }
        let interval = Duration::from_secs_f64(1.0 / rate);
        let burst = (rate * BURST_SECS).max(1.0);
        Some(AddressPace {
            interval,
            tolerance: interval.mul_f64(burst - 1.0),
            due: vec![None; SLOTS],
            keys: RandomState::new(),
        })
    }

    /// When a connection from `ip` that arrived at `now` may be served (`now` or later); `None`: not
    /// within [`MAX_DELAY`] (refuse it; it is not counted).
    pub(crate) fn admit(&mut self, ip: IpAddr, now: Instant) -> Option<Instant> {
        let slot = self.slot(ip);
        let tat = self.due[slot].map_or(now, |t| t.max(now));
        let at = tat.checked_sub(self.tolerance).map_or(now, |at| at.max(now));
        if at.duration_since(now) > MAX_DELAY {
            return None;
        }
        self.due[slot] = Some(tat + self.interval);
        Some(at)
    }

    fn slot(&self, ip: IpAddr) -> usize {
        let key: u64 = match ip.to_canonical() {
            IpAddr::V4(v4) => u32::from(v4).into(),
            // the /64, marked apart from any IPv4 address
            IpAddr::V6(v6) => (u128::from(v6) >> 64) as u64 ^ (1 << 63),
        };
        (self.keys.hash_one(key) % SLOTS as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_then_the_rate_then_refusal_beyond_the_longest_delay() {
        let mut pace = AddressPace::new(10.0).unwrap(); // burst 100
        let t0 = Instant::now();
        let a = ip("192.0.2.7");
        for _ in 0..100 {
            assert_eq!(pace.admit(a, t0), Some(t0), "the burst is served at once");
        }
        let ms = Duration::from_millis;
        assert_eq!(pace.admit(a, t0), Some(t0 + ms(100)), "then one each 100 ms");
        assert_eq!(pace.admit(a, t0), Some(t0 + ms(200)));
        for k in 3..=100 {
            assert_eq!(pace.admit(a, t0), Some(t0 + ms(100 * k)));
        }
        assert_eq!(pace.admit(a, t0), None, "11 s ahead: refused");
        assert_eq!(pace.admit(a, t0 + ms(1)), None, "and not counted");
        assert_eq!(pace.admit(a, t0 + ms(100)), Some(t0 + ms(10_100)));
        // another address is not affected (unless it shares the slot: try one that does not)
        let other = (1..=255).map(|i| ip(&format!("198.51.100.{i}"))).find(|b| pace.slot(*b) != pace.slot(a)).unwrap();
        assert_eq!(pace.admit(other, t0 + ms(100)), Some(t0 + ms(100)));
        // after a quiet spell the burst is back
        let later = t0 + Duration::from_secs(30);
        for _ in 0..100 {
            assert_eq!(pace.admit(a, later), Some(later));
        }
        assert!(pace.admit(a, later).unwrap() > later);
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let pace = AddressPace::new(1.0).unwrap();
        assert_eq!(pace.slot(ip("2001:db8:1:2::1")), pace.slot(ip("2001:db8:1:2:ffff::9")));
        assert_eq!(pace.slot(ip("::ffff:192.0.2.7")), pace.slot(ip("192.0.2.7")));
        assert!(AddressPace::new(0.0).is_none(), "0: no pacing");
    }
}
