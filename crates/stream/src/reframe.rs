//! Re-framing the jam server's ticks (64 or 128 stereo samples at 48 kHz) into the stream's 20 ms
//! frames (960 samples): no resampling, no allocation after construction. Sans-IO.

use tutti_codec::STREAM_FRAME;

/// Collects ticks until a 20 ms frame is full.
#[derive(Debug)]
pub struct Reframer {
    frame: Vec<f32>,
    filled: usize,
}

impl Default for Reframer {
    fn default() -> Self {
        Reframer { frame: vec![0.0; STREAM_FRAME * 2], filled: 0 }
    }
}

impl Reframer {
    /// Adds one tick (stereo interleaved, any length) and calls `emit` with each frame it completes.
    pub fn push(&mut self, mut samples: &[f32], mut emit: impl FnMut(&[f32])) {
        while !samples.is_empty() {
            let n = (self.frame.len() - self.filled).min(samples.len());
            self.frame[self.filled..self.filled + n].copy_from_slice(&samples[..n]);
            self.filled += n;
            samples = &samples[n..];
            if self.filled == self.frame.len() {
                emit(&self.frame);
                self.filled = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tick: usize, ticks: usize) -> Vec<Vec<f32>> {
        let mut r = Reframer::default();
        let mut frames = Vec::new();
        let mut t = 0.0f32;
        for _ in 0..ticks {
            let tick_samples: Vec<f32> = (0..tick * 2)
                .map(|_| {
                    t += 1.0;
                    t
                })
                .collect();
            r.push(&tick_samples, |f| frames.push(f.to_vec()));
        }
        frames
    }

    #[test]
    fn ticks_of_64_and_128_become_continuous_20_ms_frames() {
        for tick in [64, 128] {
            // 60 ms of ticks: exactly three frames, every sample once, in order.
            let frames = run(tick, (3 * STREAM_FRAME).div_ceil(tick));
            assert_eq!(frames.len(), 3, "tick {tick}");
            let all: Vec<f32> = frames.concat();
            assert!(all.iter().enumerate().all(|(i, &s)| s == i as f32 + 1.0), "tick {tick}");
        }
        // 128 does not divide 960: a frame ends inside a tick and the rest starts the next frame.
        assert_eq!(run(128, 8).len(), 1);
        assert_eq!(run(128, 7).len(), 0);
    }
}
