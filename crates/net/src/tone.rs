//! A test tone: a sine at a quarter of full scale, the same on every channel, generated frame by
//! frame with a continuous phase (what `tutti client --input tone` and the load generator send).

use tutti_proto::audio::SAMPLE_RATE;

pub struct Tone {
    phase: f32,
    step: f32,
    channels: usize,
}

impl Tone {
    pub fn new(hz: f32, channels: usize) -> Self {
        Tone { phase: 0.0, step: hz / SAMPLE_RATE as f32 * std::f32::consts::TAU, channels: channels.max(1) }
    }

    /// Fills `pcm` (interleaved) with the next samples of the tone.
    pub fn fill(&mut self, pcm: &mut [f32]) {
        for frame in pcm.chunks_exact_mut(self.channels) {
            frame.fill(0.25 * self.phase.sin());
            self.phase = (self.phase + self.step) % std::f32::consts::TAU;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tone;

    #[test]
    fn continuous_across_frames_and_equal_on_both_channels() {
        let mut tone = Tone::new(1000.0, 2);
        let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
        tone.fill(&mut a);
        tone.fill(&mut b);
        let mut whole = Tone::new(1000.0, 2);
        let mut c = [0.0f32; 16];
        whole.fill(&mut c);
        assert_eq!([a, b].concat(), c.to_vec());
        assert!(c.chunks_exact(2).all(|f| f[0] == f[1]));
        assert!(c.iter().all(|s| s.abs() <= 0.25) && c.iter().any(|s| s.abs() > 0.15));
    }
}
