//! Tick steps 3 and 4: mixing, encoding and sending, listener by listener in an order that rotates
//! from tick to tick, handing the datagrams over in small batches as soon as their mixes are encoded
//! (so the first listeners' audio leaves while the others' is still being encoded, and nobody is
//! always last). The shell decides what "handing over" means (a `sendmmsg`, say); without one the
//! datagrams wait in the outbox as any others.

use super::Server;
use crate::personal_mix::TickInput;
use rayon::prelude::*;
use std::net::SocketAddr;
use std::time::Instant;

/// Where the tick hands the datagrams that are ready: called with every datagram waiting (in order),
/// which then count as sent.
pub type HandOver<'a> = dyn FnMut(&mut dyn Iterator<Item = (SocketAddr, &[u8])>) + 'a;

/// Encodes per hand-over (without `--multithreading`): about 100 µs of work, so a listener waits
/// little for the others of its batch, and a tick of 150 distinct mixes makes 10 `sendmmsg` calls
/// instead of one (batches of 4 cost 6–9 % more CPU per client with distinct gains, batches of 8
/// 3–6 %: docs/perf.md).
pub const ENCODES_PER_HAND_OVER: usize = 16;

/// With `--multithreading`, a tick's mixes go to the worker threads only from this many encodes on
/// (about 50 µs of work); fewer are encoded on the tick's own thread. Waking a worker on another core
/// costs about as much as it would save there, and on a busy or virtual machine that wake-up can come
/// milliseconds late, holding the whole tick up (docs/perf.md, "small ticks stay on one thread").
pub const PARALLEL_ENCODES_FROM: usize = 8;

/// The same for the tick's decodes (about half an encode each): from this many connected clients on.
pub const PARALLEL_DECODES_FROM: usize = 16;

/// Where each shared mix stands in this tick's rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Render {
    Waiting,
    /// In the batch being rendered now.
    Due,
    Done,
}

impl Server {
    /// `handle_timeout`, handing the datagrams of the audio tick to `hand_over` in small batches as
    /// their mixes are encoded (everything queued before them goes with the first batch). Datagrams
    /// queued after the tick's audio (jitter buffer reports, levels) wait in the outbox as usual.
    pub fn handle_timeout_handing_over(&mut self, now: Instant, hand_over: &mut HandOver<'_>) {
        self.run_timeout(now, Some(hand_over));
    }

    /// The listener that goes first in this tick: each tick every listener moves one place later and
    /// the last becomes the first, so a listener's send time drifts later by one encode per tick and
    /// then jumps early (never late), and over `n` ticks everybody is at every place once.
    pub(super) fn first_listener(&self) -> usize {
        let n = self.listeners.len() as u64;
        if n == 0 {
            return 0;
        }
        (n - 1 - self.tick_count % n) as usize
    }

    /// Tick steps 3 and 4: renders each listener's shared mix (once per mix; all in parallel with
    /// `--multithreading`) in the rotating order, packs the datagrams and hands them over per batch.
    pub(super) fn render_and_send(&mut self, tick: usize, mut hand_over: Option<&mut HandOver<'_>>) {
        let n = self.listeners.len();
        self.render_state.clear();
        self.render_state.resize(self.mixes.len(), Render::Waiting);
        // With `--multithreading` the whole tick is one batch: the workers balance it among
        // themselves, whereas a barrier per small batch waits each time for the slowest worker (on a
        // core shared with other work that cost more than it gained: docs/perf.md, "Jam latency").
        let batch = if self.pool.is_some() { usize::MAX } else { ENCODES_PER_HAND_OVER };
        let first = self.first_listener();
        let mut at = 0;
        while at < n {
            // This batch: listeners in order until `batch` mixes are due (listeners whose mix is
            // rendered already, or due in this batch, come along for free).
            let mut due = 0;
            let mut end = at;
            while end < n {
                let index = self.listeners[(first + end) % n];
                if let Some(g) = self.rendered_mix(index) {
                    if self.render_state[g] == Render::Waiting {
                        if due == batch {
                            break;
                        }
                        self.render_state[g] = Render::Due;
                        due += 1;
                    }
                }
                end += 1;
            }
            self.render_due(tick, due);
            for i in at..end {
                self.pack(self.listeners[(first + i) % n]);
            }
            if let Some(hand_over) = hand_over.as_deref_mut() {
                self.hand_over(hand_over);
            }
            at = end;
        }
    }

    /// The shared mix listener `index` hears this tick, if it has listeners (a mix nobody was placed
    /// on this tick holds stale frames).
    fn rendered_mix(&self, index: usize) -> Option<usize> {
        let g = self.channels[index].as_ref()?.mix?;
        self.mixes.get(g).filter(|m| m.members > 0).map(|_| g)
    }

    /// Mixes and encodes the `due` shared mixes marked `Due`.
    fn render_due(&mut self, tick: usize, due: usize) {
        let input = TickInput { samples: &self.inputs, channels: &self.source_channels, tick };
        let active = &self.active[..];
        let (mixes, state) = (&mut self.mixes, &mut self.render_state);
        match &self.pool {
            Some(pool) if due >= PARALLEL_ENCODES_FROM => {
                self.stats.parallel_passes += 1;
                pool.install(|| {
                    mixes.par_iter_mut().zip(state.par_iter_mut()).filter(|(_, s)| **s == Render::Due).for_each(
                        |(mix, s)| {
                            mix.render(&input, active);
                            *s = Render::Done;
                        },
                    )
                })
            }
            _ => {
                for (mix, s) in mixes.iter_mut().zip(state.iter_mut()).filter(|(_, s)| **s == Render::Due) {
                    mix.render(&input, active);
                    *s = Render::Done;
                }
            }
        }
        self.stats.mixes_rendered += due as u64;
    }

    /// Packs listener `index`'s mix into its datagrams, with its own sequence counter.
    fn pack(&mut self, index: usize) {
        let Some(g) = self.rendered_mix(index) else { return };
        let Some(listener) = self.channels[index].as_mut() else { return };
        let Some(stream) = listener.stream.as_mut() else { return };
        let address = listener.address;
        for coded in self.mixes[g].coded() {
            let (outbox, sent) = (&mut self.outbox, &mut self.stats.audio_packets_out);
            stream.push_coded(coded, &mut listener.out_counter, &mut self.datagram, |datagram| {
                outbox.push(address, datagram);
                *sent += 1;
            });
        }
    }

    /// Hands every waiting datagram over; they count as sent.
    fn hand_over(&mut self, hand_over: &mut HandOver<'_>) {
        if self.outbox.len() > 0 {
            hand_over(&mut self.outbox.iter());
            self.clear_transmits();
        }
    }
}
