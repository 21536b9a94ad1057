//! What the stream's threads share: the encoded pages going out (a bounded broadcast: a listener
//! that falls behind by more than its capacity is dropped), the header pages every new listener gets
//! first, the listener count, and who is playing. Holds no listener address.

use bytes::Bytes;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::broadcast;

/// Pages (20 ms each) a listener may fall behind before it is dropped: 5 s.
pub(crate) const PAGES_BEHIND: usize = 250;

pub(crate) struct Audience {
    pub pages: broadcast::Sender<Bytes>,
    /// `OpusHead` and `OpusTags`.
    pub headers: Bytes,
    pub listeners: AtomicU32,
    pub max_listeners: u32,
    /// Listeners dropped because they could not keep up (fell behind, or stopped reading).
    pub listeners_dropped: Arc<AtomicU64>,
    /// 20 ms blocks the encoder could not take in time.
    pub blocks_dropped: AtomicU64,
    /// Frames encoded, and the time from the tick handing a frame over to its page going out (queue,
    /// encode, broadcast), for `/status.json`.
    pub frames_encoded: AtomicU64,
    pub page_delay_ns: AtomicU64,
    /// Names of the musicians heard in the stream.
    pub musicians: Mutex<Vec<String>>,
    pub started: Instant,
}

impl Audience {
    pub fn new(headers: Bytes, max_listeners: u32) -> Self {
        Audience {
            pages: broadcast::channel(PAGES_BEHIND).0,
            headers,
            listeners: AtomicU32::new(0),
            max_listeners,
            listeners_dropped: Arc::default(),
            blocks_dropped: AtomicU64::new(0),
            frames_encoded: AtomicU64::new(0),
            page_delay_ns: AtomicU64::new(0),
            musicians: Mutex::new(Vec::new()),
            started: Instant::now(),
        }
    }

    /// Counts a new listener, unless the limit is reached.
    pub fn admit(self: &Arc<Self>) -> Option<Listener> {
        let admitted = self
            .listeners
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < self.max_listeners).then_some(n + 1))
            .is_ok();
        admitted.then(|| Listener { audience: self.clone() })
    }

    pub fn musicians(&self) -> Vec<String> {
        self.musicians.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// One open listener connection; uncounted when dropped.
pub(crate) struct Listener {
    audience: Arc<Audience>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.audience.listeners.fetch_sub(1, Ordering::Relaxed);
    }
}
