//! Channel level meters (§4.9): a peak of each client's decoded input, looked at on one tick every
//! ≈ 269 ms, mapped to 0…9 and decayed by half per update; and the nibble list sent to clients.

/// A held peak for one channel.
#[derive(Debug, Clone, Copy, Default)]
pub struct LevelMeter {
    /// Held peak in 16-bit sample units.
    held: f32,
}

impl LevelMeter {
    /// Takes the decoded input of the level tick (every third sample counts), returns the level 0…9.
    pub fn update(&mut self, pcm: &[f32]) -> u8 {
        let peak = pcm.iter().step_by(3).fold(0.0f32, |p, s| p.max((s * 32768.0).abs()));
        self.held = if peak > self.held { peak } else { self.held * 0.5 };
        level_of(self.held)
    }
}

/// Level 0…8 (9 for a full-scale negative peak) of a peak in 16-bit units.
pub fn level_of(peak: f32) -> u8 {
    if peak < 1.0 {
        return 0;
    }
    let db = 20.0 * (peak / 32767.0).log10();
    ((db + 50.0) * 8.0 / 50.0).ceil().max(0.0) as u8
}

/// Ticks between level updates: ≈ 269 ms at either tick size.
pub fn update_interval_ticks(tick_samples: usize) -> u64 {
    if tick_samples == 64 {
        201
    } else {
        101
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(level_of(0.0), 0);
        assert_eq!(level_of(32767.0), 8);
        assert_eq!(level_of(32768.0), 9);
        assert_eq!(level_of(32767.0 / 10.0), 5); // −20 dB
        assert_eq!(level_of(10.0), 0);
    }

    #[test]
    fn decay_by_half() {
        let mut m = LevelMeter::default();
        assert_eq!(m.update(&[0.99; 3]), 8);
        let after: Vec<u8> = (0..4).map(|_| m.update(&[0.0; 3])).collect();
        assert!(after.windows(2).all(|w| w[1] <= w[0]));
        assert!(after[3] < 8);
    }
}
