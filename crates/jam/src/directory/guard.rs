//! Amplification limits of the directory. A UDP source address can be forged, so every reply goes
//! through this guard, per source IP:
//!
//! * **Unproven** sources earn `ratio` (3) reply bytes per request byte they send; a reply is sent
//!   only if it fits their credit. A forged 9-byte request can therefore make us send at most 27
//!   bytes to its victim.
//! * A source **proves** that it receives what we send by echoing a cookie: a CLM_PING_MS whose
//!   value is a keyed hash of its address and the time. Everything that behaves like a Jamulus
//!   server echoes pings, and so does tutti's list client. Proven sources get full lists, limited
//!   only by a per-IP list rate.
//! * Real Jamulus clients never echo a ping. With [`ListPolicy::Jamulus`] (the default) an unproven
//!   source still gets one complete answer per `courtesy_interval`, from a global byte budget: a
//!   spoofed request can then draw one list per interval per victim (bounded, but more than 3×).
//!   [`ListPolicy::Strict`] turns that off: unproven sources only ever get ≤ 3× their bytes.
//!
//! The table of sources is bounded; sources beyond it share one credit and get no courtesy answers.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What unproven sources get (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListPolicy {
    /// Jamulus clients work: one complete answer per unproven IP per courtesy interval.
    #[default]
    Jamulus,
    /// At most `ratio` × request bytes for every unproven source, lists only after the cookie echo.
    Strict,
}

/// The guard's knobs.
#[derive(Debug, Clone)]
pub struct Limits {
    pub policy: ListPolicy,
    /// Reply bytes per request byte for unproven sources.
    pub ratio: u32,
    /// [`ListPolicy::Jamulus`]: one complete answer per unproven IP per this interval.
    pub courtesy_interval: Duration,
    /// [`ListPolicy::Jamulus`]: bytes per second all courtesy answers together may use.
    pub courtesy_bytes_per_second: u64,
    /// List replies per second one proven IP may get (0 = unlimited, for benchmarks).
    pub proven_lists_per_second: u32,
    /// How long a cookie echo keeps a source proven.
    pub proof_lifetime: Duration,
    /// Source IPs tracked at most.
    pub max_sources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            policy: ListPolicy::Jamulus,
            ratio: 3,
            courtesy_interval: Duration::from_secs(5),
            courtesy_bytes_per_second: 1 << 20,
            proven_lists_per_second: 10,
            proof_lifetime: Duration::from_secs(600),
            max_sources: 65_536,
        }
    }
}

/// A cookie is valid during the minute it was made and the next one.
const COOKIE_EPOCH: Duration = Duration::from_secs(60);
/// Unused credit is capped at what this many bytes of requests earn.
const CREDIT_CAP_REQUEST_BYTES: u64 = 2_000;
/// Sources idle this long are forgotten when the table is pruned.
const IDLE_FORGET: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
struct Source {
    credit: u64,
    proven_until: Option<Instant>,
    last_courtesy: Option<Instant>,
    window_start: Instant,
    lists_in_window: u32,
    last_seen: Instant,
}

/// How a list reply was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListGrant {
    Proven,
    Credit,
    Courtesy,
}

#[derive(Debug)]
pub(crate) struct Guard {
    limits: Limits,
    secret: u64,
    started: Instant,
    sources: HashMap<IpAddr, Source>,
    /// Stateless stand-in for sources beyond the table.
    overflow: Option<Source>,
    courtesy_tokens: u64,
    courtesy_refilled: Instant,
}

impl Guard {
    pub fn new(limits: Limits, secret: u64, now: Instant) -> Self {
        let tokens = limits.courtesy_bytes_per_second;
        Guard {
            limits,
            secret,
            started: now,
            sources: HashMap::new(),
            overflow: None,
            courtesy_tokens: tokens,
            courtesy_refilled: now,
        }
    }

    /// Credits a received datagram of `bytes` from `from`.
    pub fn on_request(&mut self, now: Instant, from: IpAddr, bytes: usize) {
        let ratio = u64::from(self.limits.ratio);
        let source = self.source(now, from);
        source.last_seen = now;
        source.credit = (source.credit + ratio * bytes as u64).min(ratio * CREDIT_CAP_REQUEST_BYTES);
    }

    pub fn is_proven(&self, now: Instant, ip: IpAddr) -> bool {
        self.sources.get(&ip).and_then(|s| s.proven_until).is_some_and(|t| t > now)
    }

    /// A small reply (ping echo, version, registration result, cookie): proven, or within credit.
    pub fn allow_small(&mut self, now: Instant, to: IpAddr, bytes: usize) -> bool {
        let proven = self.is_proven(now, to);
        let source = self.source(now, to);
        if proven {
            return true;
        }
        if source.credit >= bytes as u64 {
            source.credit -= bytes as u64;
            return true;
        }
        false
    }

    /// A list reply of `bytes` in all (reduced + full lists).
    pub fn allow_list(&mut self, now: Instant, to: IpAddr, bytes: usize) -> Option<ListGrant> {
        let proven = self.is_proven(now, to);
        let per_second = self.limits.proven_lists_per_second;
        let (policy, interval) = (self.limits.policy, self.limits.courtesy_interval);
        self.refill_courtesy(now);
        let tokens = self.courtesy_tokens;
        let source = self.source(now, to);
        if proven {
            if now.duration_since(source.window_start) >= Duration::from_secs(1) {
                source.window_start = now;
                source.lists_in_window = 0;
            }
            if per_second != 0 && source.lists_in_window >= per_second {
                return None;
            }
            source.lists_in_window += 1;
            return Some(ListGrant::Proven);
        }
        if source.credit >= bytes as u64 {
            source.credit -= bytes as u64;
            return Some(ListGrant::Credit);
        }
        let courtesy_due = match source.last_courtesy {
            Some(t) => now.duration_since(t) >= interval,
            None => true,
        };
        if policy == ListPolicy::Jamulus && courtesy_due && tokens >= bytes as u64 {
            source.last_courtesy = Some(now);
            self.courtesy_tokens -= bytes as u64;
            return Some(ListGrant::Courtesy);
        }
        None
    }

    /// The cookie for `peer` now.
    pub fn cookie(&self, now: Instant, peer: SocketAddr) -> u32 {
        self.cookie_for_epoch(peer, self.epoch(now))
    }

    /// Whether `value` is the cookie we gave `peer` (this minute or the last). No side effects.
    pub fn is_cookie(&self, now: Instant, peer: SocketAddr, value: u32) -> bool {
        let epoch = self.epoch(now);
        value == self.cookie_for_epoch(peer, epoch) || (epoch > 0 && value == self.cookie_for_epoch(peer, epoch - 1))
    }

    /// Checks an echoed cookie; a match proves `peer`'s IP. True if it matched.
    pub fn check_echo(&mut self, now: Instant, peer: SocketAddr, value: u32) -> bool {
        let valid = self.is_cookie(now, peer, value);
        if valid {
            let until = now + self.limits.proof_lifetime;
            self.source(now, peer.ip()).proven_until = Some(until);
        }
        valid
    }

    /// Forgets idle sources (call now and then).
    pub fn prune(&mut self, now: Instant) {
        self.sources
            .retain(|_, s| now.duration_since(s.last_seen) < IDLE_FORGET || s.proven_until.is_some_and(|t| t > now));
    }

    pub fn tracks(&self, ip: IpAddr) -> bool {
        self.sources.contains_key(&ip)
    }

    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    fn epoch(&self, now: Instant) -> u64 {
        now.duration_since(self.started).as_secs() / COOKIE_EPOCH.as_secs()
    }

    fn cookie_for_epoch(&self, peer: SocketAddr, epoch: u64) -> u32 {
        let mut h = DefaultHasher::new();
        self.secret.hash(&mut h);
        peer.hash(&mut h);
        epoch.hash(&mut h);
        self.secret.rotate_left(17).hash(&mut h);
        h.finish() as u32
    }

    fn refill_courtesy(&mut self, now: Instant) {
        let rate = self.limits.courtesy_bytes_per_second;
        let elapsed = now.duration_since(self.courtesy_refilled);
        let add = (rate as u128 * elapsed.as_micros() / 1_000_000) as u64;
        if add > 0 {
            self.courtesy_tokens = (self.courtesy_tokens + add).min(rate);
            self.courtesy_refilled = now;
        }
    }

    fn source(&mut self, now: Instant, ip: IpAddr) -> &mut Source {
        let fresh = Source {
            credit: 0,
            proven_until: None,
            last_courtesy: None,
            window_start: now,
            lists_in_window: 0,
            last_seen: now,
        };
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.limits.max_sources {
            self.prune(now);
            if self.sources.len() >= self.limits.max_sources {
                // Stateless: the overflow source carries no credit between requests and no courtesy.
                let overflow = self.overflow.get_or_insert(fresh);
                overflow.last_courtesy = Some(now);
                return overflow;
            }
        }
        self.sources.entry(ip).or_insert(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, last])
    }

    #[test]
    fn unproven_sources_get_at_most_three_times_their_bytes() {
        let now = Instant::now();
        let mut g = Guard::new(Limits { policy: ListPolicy::Strict, ..Limits::default() }, 7, now);
        let mut sent = 0;
        for _ in 0..100 {
            g.on_request(now, ip(1), 9);
            if g.allow_small(now, ip(1), 13) {
                sent += 13;
            }
            if g.allow_list(now, ip(1), 2_000).is_some() {
                sent += 2_000;
            }
        }
        assert!(sent <= 3 * 9 * 100, "sent {sent}");
        assert!(sent > 0, "small replies still go out");
    }

    #[test]
    fn cookie_echo_proves_and_lists_are_rate_limited() {
        let now = Instant::now();
        let mut g = Guard::new(Limits::default(), 7, now);
        let peer = SocketAddr::new(ip(2), 4000);
        assert!(!g.check_echo(now, peer, g.cookie(now, peer).wrapping_add(1)));
        assert!(!g.check_echo(now, SocketAddr::new(ip(3), 4000), g.cookie(now, peer)), "bound to the address");
        let later = now + Duration::from_secs(61);
        assert!(g.check_echo(later, peer, g.cookie(now, peer)), "valid in the next minute");
        assert!(!g.check_echo(now + Duration::from_secs(200), peer, g.cookie(now, peer)), "but not later");
        let granted = (0..50).filter(|_| g.allow_list(later, ip(2), 50_000) == Some(ListGrant::Proven)).count();
        assert_eq!(granted, 10);
    }

    #[test]
    fn courtesy_is_one_answer_per_interval() {
        let now = Instant::now();
        let mut g = Guard::new(Limits::default(), 7, now);
        assert_eq!(g.allow_list(now, ip(4), 5_000), Some(ListGrant::Courtesy));
        assert_eq!(g.allow_list(now + Duration::from_secs(1), ip(4), 5_000), None);
        assert_eq!(g.allow_list(now + Duration::from_secs(5), ip(4), 5_000), Some(ListGrant::Courtesy));
    }

    #[test]
    fn table_is_bounded() {
        let now = Instant::now();
        let mut g = Guard::new(Limits { max_sources: 100, ..Limits::default() }, 7, now);
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            g.on_request(now, ip, 9);
            assert!(g.allow_small(now, ip, 27), "a first request still gets its 27 bytes");
        }
        assert!(g.tracked_sources() <= 100);
    }
}
