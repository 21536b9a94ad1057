//! Limits on what one socket may send: payload sizes, an event rate (token bucket) and the number of
//! refusals after which it is disconnected. Pure: time is passed in.

use crate::Error;
use std::time::{Duration, Instant};

/// Configurable limits (defaults are the documented ones; a benchmark may raise them).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest chat text, in characters.
    pub text_chars: usize,
    /// Largest `signal` data, in bytes of its JSON encoding.
    pub signal_bytes: usize,
    /// Most interest tags in `find`.
    pub interest_tags: usize,
    /// Longest interest tag, in characters.
    pub interest_chars: usize,
    /// Sustained events per second per socket.
    pub events_per_sec: f64,
    /// Events a socket may send in a burst above the sustained rate.
    pub burst: f64,
    /// Refusals (rate, size, malformed) within `strike_window` after which the socket is disconnected.
    pub strikes: u32,
    /// How long refusals are remembered.
    pub strike_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            text_chars: 2000,
            signal_bytes: 16 * 1024,
            interest_tags: 10,
            interest_chars: 32,
            events_per_sec: 20.0,
            burst: 60.0,
            strikes: 30,
            strike_window: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// Checks a chat text's length.
    pub fn check_text(&self, text: &str) -> Result<(), Error> {
        if text.chars().count() > self.text_chars {
            return Err(Error::TooLarge { what: "message text", limit: self.text_chars, unit: "characters" });
        }
        Ok(())
    }

    /// Checks a signal's encoded size.
    pub fn check_signal(&self, encoded_len: usize) -> Result<(), Error> {
        if encoded_len > self.signal_bytes {
            return Err(Error::TooLarge { what: "signal data", limit: self.signal_bytes, unit: "bytes" });
        }
        Ok(())
    }
}

/// One socket's rate budget and recent refusals.
#[derive(Debug, Clone)]
pub struct Budget {
    tokens: f64,
    refilled: Instant,
    strikes: u32,
    last_strike: Instant,
}

impl Budget {
    /// A full budget.
    pub fn new(limits: &Limits, now: Instant) -> Self {
        Budget { tokens: limits.burst, refilled: now, strikes: 0, last_strike: now }
    }

    /// Spends one event; `Err(RateLimited)` when the budget is exhausted (which is also a strike).
    pub fn spend(&mut self, limits: &Limits, now: Instant) -> Result<(), Error> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limits.events_per_sec).min(limits.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Error::RateLimited)
        }
    }

    /// Refusals counted in the current window.
    pub fn strikes(&self) -> u32 {
        self.strikes
    }

    /// Records a refusal; `Err(Abusive)` once there were too many within the window.
    pub fn strike(&mut self, limits: &Limits, now: Instant) -> Result<(), Error> {
        if now.saturating_duration_since(self.last_strike) > limits.strike_window {
            self.strikes = 0;
        }
        self.last_strike = now;
        self.strikes += 1;
        if self.strikes > limits.strikes {
            Err(Error::Abusive)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let limits = Limits { events_per_sec: 10.0, burst: 5.0, ..Limits::default() };
        let t0 = Instant::now();
        let mut b = Budget::new(&limits, t0);
        for _ in 0..5 {
            b.spend(&limits, t0).unwrap();
        }
        assert!(matches!(b.spend(&limits, t0), Err(Error::RateLimited)));
        // 100 ms at 10/s buys exactly one more event
        b.spend(&limits, t0 + Duration::from_millis(100)).unwrap();
        assert!(b.spend(&limits, t0 + Duration::from_millis(100)).is_err());
        // a long pause refills only up to the burst
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            b.spend(&limits, later).unwrap();
        }
        assert!(b.spend(&limits, later).is_err());
    }

    #[test]
    fn strikes_disconnect_only_when_persistent() {
        let limits = Limits { strikes: 3, strike_window: Duration::from_secs(10), ..Limits::default() };
        let t0 = Instant::now();
        let mut b = Budget::new(&limits, t0);
        for _ in 0..3 {
            b.strike(&limits, t0).unwrap();
        }
        // after a quiet window the count starts again
        let later = t0 + Duration::from_secs(11);
        for _ in 0..3 {
            b.strike(&limits, later).unwrap();
        }
        assert!(matches!(b.strike(&limits, later), Err(Error::Abusive)));
    }

    #[test]
    fn sizes() {
        let limits = Limits::default();
        assert!(limits.check_text(&"é".repeat(2000)).is_ok());
        assert!(matches!(limits.check_text(&"a".repeat(2001)), Err(Error::TooLarge { .. })));
        assert!(limits.check_signal(16 * 1024).is_ok());
        assert!(limits.check_signal(16 * 1024 + 1).is_err());
    }
}
