//! Hands the listen-in stream's tap (built by the binary, from `tutti-stream`) to the server thread,
//! which installs it in the jam server before the first datagram. Keeps `ServerOptions` cloneable.

use std::sync::{Arc, Mutex};
use tutti_jam::{StreamConfig, StreamTap};

/// A stream tap and what it hears.
pub type Tap = (Box<dyn StreamTap>, StreamConfig);

/// The tap; taken once, by the server that starts with it.
#[derive(Clone, Default)]
pub struct StreamSlot(Arc<Mutex<Option<Tap>>>);

impl StreamSlot {
    pub fn new(tap: Box<dyn StreamTap>, config: StreamConfig) -> Self {
        StreamSlot(Arc::new(Mutex::new(Some((tap, config)))))
    }

    /// The tap, the first time.
    pub fn take(&self) -> Option<Tap> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

impl std::fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let filled = self.0.lock().map(|s| s.is_some()).unwrap_or(false);
        f.debug_struct("StreamSlot").field("filled", &filled).finish()
    }
}
