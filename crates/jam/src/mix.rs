//! The arithmetic of a personal mix (§4.7): gain, the "balance" pan law, mono/stereo folding and hard
//! clipping. Works on caller-owned slices (f32, full scale = 1.0) and never allocates, so it can run in
//! the audio tick.

/// Gain of a source that a listener has not touched (0 dB).
pub const UNITY_GAIN: f32 = 1.0;
/// Pan of a source that a listener has not touched (centre).
pub const CENTRE_PAN: f32 = 0.5;

/// Left and right factors for pan `p` ∈ [0, 1]: centre is full level on both sides (no −3 dB), hard
/// left silences the right side.
pub fn pan_law(pan: f32) -> (f32, f32) {
    ((1.0 - pan).min(0.5) * 2.0, pan.min(0.5) * 2.0)
}

/// Gain from the wire's u16 (`value / 32768`; not clamped, as Jamulus does not clamp it).
pub fn gain_from_wire(value: u16) -> f32 {
    f32::from(value) / 32768.0
}

/// Pan from the wire's u16 (`value / 32768`, clamped to [0, 1]).
pub fn pan_from_wire(value: u16) -> f32 {
    (f32::from(value) / 32768.0).min(1.0)
}

/// Adds `source` (`source_channels` interleaved) into `mix` (`mix_channels` interleaved, same number of
/// frames) at `gain`; `pan` applies only to a stereo mix. A mono mix takes stereo sources as (L+R)/2.
pub fn add_source(mix: &mut [f32], mix_channels: usize, source: &[f32], source_channels: usize, gain: f32, pan: f32) {
    match (mix_channels, source_channels) {
        (1, 1) => {
            for (m, s) in mix.iter_mut().zip(source) {
                *m += s * gain;
            }
        }
        (1, _) => {
            let g = gain * 0.5;
            for (m, s) in mix.iter_mut().zip(source.chunks_exact(2)) {
                *m += (s[0] + s[1]) * g;
            }
        }
        (_, 1) => {
            let (l, r) = pan_law(pan);
            let (gl, gr) = (gain * l, gain * r);
            for (m, s) in mix.chunks_exact_mut(2).zip(source) {
                m[0] += s * gl;
                m[1] += s * gr;
            }
        }
        _ => {
            let (l, r) = pan_law(pan);
            let (gl, gr) = (gain * l, gain * r);
            for (m, s) in mix.chunks_exact_mut(2).zip(source.chunks_exact(2)) {
                m[0] += s[0] * gl;
                m[1] += s[1] * gr;
            }
        }
    }
}

/// Hard-clips a mix in place to what 16-bit PCM can carry ([−32768, 32767] / 32768).
pub fn clip(mix: &mut [f32]) {
    const MAX: f32 = 32767.0 / 32768.0;
    for m in mix {
        *m = m.clamp(-1.0, MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_pan_law() {
        assert_eq!(pan_law(0.5), (1.0, 1.0));
        assert_eq!(pan_law(0.0), (1.0, 0.0));
        assert_eq!(pan_law(1.0), (0.0, 1.0));
        assert_eq!(pan_law(0.25), (1.0, 0.5));
    }

    #[test]
    fn wire_values() {
        assert_eq!(gain_from_wire(0x8000), 1.0);
        assert_eq!(gain_from_wire(0xffff), 65535.0 / 32768.0);
        assert_eq!(pan_from_wire(0x4000), 0.5);
    }

    #[test]
    fn folding_and_panning() {
        let mut mono = [0.0f32; 2];
        add_source(&mut mono, 1, &[0.2, 0.4, 0.6, 0.8], 2, 1.0, CENTRE_PAN);
        assert!((mono[0] - 0.3).abs() < 1e-6 && (mono[1] - 0.7).abs() < 1e-6, "{mono:?}");
        let mut stereo = [0.0f32; 4];
        add_source(&mut stereo, 2, &[0.5, -0.5], 1, 0.5, 0.0);
        assert_eq!(stereo, [0.25, 0.0, -0.25, 0.0]);
        add_source(&mut stereo, 2, &[0.1, 0.2, 0.3, 0.4], 2, 1.0, 1.0);
        assert_eq!(stereo, [0.25, 0.2, -0.25, 0.4]);
    }

    #[test]
    fn hard_clipping() {
        let mut m = [1.5f32, -2.0, 0.25];
        clip(&mut m);
        assert_eq!(m, [32767.0 / 32768.0, -1.0, 0.25]);
    }
}
