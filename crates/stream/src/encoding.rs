//! The encoder thread: takes the 20 ms blocks from the audio tick, encodes each once (standard Opus),
//! wraps it in an Ogg page and writes the pages to every listener (`FanOut`, in groups) and to the
//! Icecast source connection (a broadcast). While the jam is idle (no
//! ticks, nobody connected) it keeps the stream going with silence at real-time pace, so players
//! do not stall. With nobody listening (no listener, no Icecast connection) nothing is encoded.

use crate::audience::Audience;
use crate::fanout::{FanOut, Joining};
use crate::ogg::OggOpusWriter;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::warn;
use tutti_codec::{StreamEncoder, STREAM_FRAME};

const FRAME: Duration = Duration::from_millis(20);
/// No block for this long: the jam is idle, silence takes over.
const IDLE_AFTER: Duration = Duration::from_millis(100);

pub(crate) struct Encoding {
    pub encoder: StreamEncoder,
    pub writer: OggOpusWriter,
    pub audience: Arc<Audience>,
    pub fanout: FanOut<std::net::TcpStream>,
    pub joining: Receiver<Joining<std::net::TcpStream>>,
}

impl Encoding {
    pub fn run(mut self, blocks: Receiver<(Instant, Vec<f32>)>, spare: Sender<Vec<f32>>) {
        let mut packet = vec![0u8; tutti_codec::MAX_PACKET_BYTES];
        let mut page = Vec::with_capacity(2048);
        let silence = vec![0.0f32; STREAM_FRAME * 2];
        let mut last = Instant::now();
        loop {
            match blocks.recv_timeout(IDLE_AFTER) {
                Ok((handed_over, block)) => {
                    if self.heard() {
                        self.encode(&block, handed_over, &mut packet, &mut page);
                    }
                    let _ = spare.send(block);
                    last = Instant::now();
                }
                Err(RecvTimeoutError::Timeout) if !self.heard() => last = Instant::now(),
                Err(RecvTimeoutError::Timeout) => {
                    while last + FRAME <= Instant::now() {
                        self.encode(&silence, Instant::now(), &mut packet, &mut page);
                        last += FRAME;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Someone listens: a listener (counted from its request on) or the Icecast connection.
    fn heard(&self) -> bool {
        self.audience.listeners.load(Ordering::Relaxed) > 0 || self.audience.pages.receiver_count() > 0
    }

    /// Encodes one frame whose last sample the tick handed over at `handed_over`.
    fn encode(&mut self, pcm: &[f32], handed_over: Instant, packet: &mut [u8], page: &mut Vec<u8>) {
        match self.encoder.encode_float(pcm, packet) {
            Ok(n) => {
                page.clear();
                self.writer.audio_page(&packet[..n], STREAM_FRAME as u64, page);
                let page = Bytes::copy_from_slice(page);
                if self.audience.pages.receiver_count() > 0 {
                    let _ = self.audience.pages.send(page.clone());
                }
                while let Ok(joining) = self.joining.try_recv() {
                    self.fanout.join(joining);
                }
                self.fanout.push(page, Instant::now());
            }
            Err(e) => warn!("stream encoder: {e}"),
        }
        self.audience.frames_encoded.fetch_add(1, Ordering::Relaxed);
        self.audience.page_delay_ns.fetch_add(handed_over.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}
