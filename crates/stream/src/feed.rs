//! The audio tick's side of the stream: a `StreamTap` that re-frames each tick into 20 ms blocks and
//! hands every full block to the encoder thread through a bounded channel, in buffers that travel
//! back and forth (no allocation, no blocking: if the encoder is behind, the block is dropped and
//! counted).

use crate::audience::Audience;
use crate::reframe::Reframer;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Instant;
use tutti_jam::StreamTap;

/// Blocks that may wait for the encoder (each 20 ms).
pub(crate) const QUEUED_BLOCKS: usize = 8;

/// Installed in the jam server with `Server::set_stream`.
pub struct StreamFeed {
    reframer: Reframer,
    blocks: SyncSender<(Instant, Vec<f32>)>,
    spare: Receiver<Vec<f32>>,
    stash: Vec<Vec<f32>>,
    audience: Arc<Audience>,
}

impl StreamFeed {
    pub(crate) fn new(
        blocks: SyncSender<(Instant, Vec<f32>)>,
        spare: Receiver<Vec<f32>>,
        audience: Arc<Audience>,
    ) -> Self {
        let frame = tutti_codec::STREAM_FRAME * 2;
        let stash = (0..QUEUED_BLOCKS + 2).map(|_| vec![0.0; frame]).collect();
        StreamFeed { reframer: Reframer::default(), blocks, spare, stash, audience }
    }
}

impl StreamTap for StreamFeed {
    fn tick(&mut self, samples: &[f32]) {
        let StreamFeed { reframer, blocks, spare, stash, audience } = self;
        reframer.push(samples, |frame| {
            let Some(mut buffer) = stash.pop().or_else(|| spare.try_recv().ok()) else {
                audience.blocks_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            };
            buffer.copy_from_slice(frame);
            match blocks.try_send((Instant::now(), buffer)) {
                Ok(()) => {}
                Err(TrySendError::Full((_, buffer))) | Err(TrySendError::Disconnected((_, buffer))) => {
                    audience.blocks_dropped.fetch_add(1, Ordering::Relaxed);
                    stash.push(buffer);
                }
            }
        });
    }

    fn listeners(&self) -> u32 {
        self.audience.listeners.load(Ordering::Relaxed)
    }

    fn musicians(&mut self, names: &[String]) {
        if let Ok(mut musicians) = self.audience.musicians.lock() {
            *musicians = names.to_vec();
        }
    }
}
