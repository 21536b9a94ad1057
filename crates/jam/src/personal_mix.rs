//! Personal mixes, each computed and encoded once per distinct setting (§4.7). Listeners whose mixes
//! are identical this tick — same output format, same effective gain and pan for every source, as
//! when nobody touched a fader — share one `SharedMix`: one mix and one encode for all of them. A
//! listener stays with the same `SharedMix` from tick to tick while its settings hold, so the encoder
//! state it hears is continuous; only a fader move (or a fade-in ending) moves it to another.
//!
//! Owns the mixing and encoding of the tick; not the decoding (`channel.rs`) nor the datagrams.

use crate::mix::{add_source, clip, CENTRE_PAN};
use tutti_codec::{Channels, CodecError, Encoder, FrameSize};
use tutti_proto::AudioFormat;

/// What an encoder must produce for a listener; listeners that differ here never share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MixFormat {
    pub channels: usize,
    pub frame: usize,
    pub coded_bytes: usize,
}

impl MixFormat {
    pub fn of(format: &AudioFormat) -> Self {
        MixFormat {
            channels: usize::from(format.channels),
            frame: format.frame_samples(),
            coded_bytes: format.coded_bytes,
        }
    }
}

/// One tick of decoded input: `tick` frames of every channel that has a stream, interleaved, in
/// slots of `tick * 2` samples; `channels[s]` is 0 for a slot without input.
pub(crate) struct TickInput<'a> {
    pub samples: &'a [f32],
    pub channels: &'a [u8],
    pub tick: usize,
}

impl TickInput<'_> {
    fn source(&self, slot: usize) -> &[f32] {
        let at = slot * self.tick * 2;
        &self.samples[at..at + self.tick * usize::from(self.channels[slot])]
    }
}

/// The effective settings of one listener's mix this tick: a (gain, pan) per active source.
pub(crate) type MixKey = [(f32, f32)];

/// Hash of a key (FxHash-style; collisions are resolved by comparing keys).
pub(crate) fn key_hash(format: MixFormat, key: &MixKey) -> u64 {
    let mut h = (format.channels as u64) << 32 | (format.frame as u64) << 16 | format.coded_bytes as u64;
    for &(g, p) in key {
        h = (h.rotate_left(5) ^ (u64::from(g.to_bits()) << 32 | u64::from(p.to_bits())))
            .wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    h
}

/// Fills `key` for a listener: `gains`/`pans` are its faders, `fades` every source's fade-in, `own`
/// its own slot (its own signal is not faded by its own fade-in, everybody else's is).
pub(crate) fn fill_key(
    key: &mut [(f32, f32)],
    active: &[usize],
    gains: &[f32],
    pans: &[f32],
    fades: &[f32],
    own: usize,
    stereo: bool,
) {
    let own_fade = fades[own];
    for (k, &s) in key.iter_mut().zip(active) {
        let mut gain = gains[s] * fades[s];
        if s != own {
            gain *= own_fade;
        }
        // Pan is meaningless in a mono mix; equal keys let mono listeners share whatever their pans.
        *k = (gain, if stereo { pans[s] } else { CENTRE_PAN });
    }
}

/// A mix shared by the listeners whose settings are equal, with its encoder.
pub(crate) struct SharedMix {
    pub format: MixFormat,
    encoder: Encoder,
    /// Settings of this tick's mix (`active` sources in order) and their hash.
    key: Vec<(f32, f32)>,
    key_len: usize,
    hash: u64,
    /// Listeners this tick and last tick.
    pub members: u32,
    pub last_members: u32,
    mix: Vec<f32>,
    /// Mixed samples not yet encoded (when a frame is longer than the tick).
    pending: Vec<f32>,
    pending_frames: usize,
    /// Frames encoded this tick, back to back.
    coded: Vec<u8>,
    coded_frames: usize,
}

impl SharedMix {
    pub fn new(format: MixFormat, tick: usize, max_sources: usize) -> Result<Self, CodecError> {
        let frame = FrameSize::from_samples(format.frame)?;
        let channels = Channels::from_count(format.channels)?;
        let span = format.frame + tick;
        Ok(SharedMix {
            format,
            encoder: Encoder::with_coded_bytes(frame, channels, format.coded_bytes)?,
            key: vec![(0.0, 0.0); max_sources],
            key_len: 0,
            hash: 0,
            members: 0,
            last_members: 0,
            mix: vec![0.0; tick * format.channels],
            pending: vec![0.0; span * format.channels],
            pending_frames: 0,
            coded: vec![0; format.coded_bytes * span.div_ceil(format.frame)],
            coded_frames: 0,
        })
    }

    /// Whether a listener with this format, hash and key hears exactly this mix.
    pub fn matches(&self, format: MixFormat, hash: u64, key: &MixKey) -> bool {
        self.format == format && self.hash == hash && self.key[..self.key_len] == *key
    }

    /// Takes the settings for this tick (the first member claims it).
    pub fn claim(&mut self, hash: u64, key: &MixKey) {
        self.hash = hash;
        self.key_len = key.len();
        self.key[..key.len()].copy_from_slice(key);
        self.members = 1;
    }

    /// A mix that served nobody last tick starts from a clean encoder for its new listeners.
    pub fn restart(&mut self) {
        let _ = self.encoder.reset();
        self.pending_frames = 0;
    }

    /// Mixes this tick's input with the key's settings, clips, and encodes every complete frame.
    pub fn render(&mut self, input: &TickInput<'_>, active: &[usize]) {
        let n = self.format.channels;
        let tick = input.tick;
        let mix = &mut self.mix[..tick * n];
        let key = &self.key[..self.key_len];
        let all_mono = n == 1 && active.iter().all(|&s| input.channels[s] == 1);
        if all_mono && tick.is_multiple_of(CHUNK) {
            mix_mono(mix, input, key, active);
        } else {
            mix.fill(0.0);
            for (&(gain, pan), &s) in key.iter().zip(active) {
                if gain != 0.0 {
                    add_source(mix, n, input.source(s), usize::from(input.channels[s]), gain, pan);
                }
            }
        }
        clip(mix);
        let at = self.pending_frames * n;
        self.pending[at..at + tick * n].copy_from_slice(mix);
        self.pending_frames += tick;
        self.coded_frames = 0;
        let frame = self.format.frame;
        let bytes = self.format.coded_bytes;
        while self.pending_frames >= frame {
            let slot = &mut self.coded[self.coded_frames * bytes..(self.coded_frames + 1) * bytes];
            if self.encoder.encode_float(&self.pending[..frame * n], slot).is_err() {
                slot.fill(0);
            }
            self.pending.copy_within(frame * n..self.pending_frames * n, 0);
            self.pending_frames -= frame;
            self.coded_frames += 1;
        }
    }

    /// The frames encoded this tick, `format.coded_bytes` each.
    pub fn coded(&self) -> impl Iterator<Item = &[u8]> {
        self.coded[..self.coded_frames * self.format.coded_bytes].chunks_exact(self.format.coded_bytes)
    }
}

/// Samples of a mono mix accumulated in registers while every source is added (see `mix_mono`).
const CHUNK: usize = 32;

/// The common case, mono sources into a mono mix, summed `CHUNK` samples at a time over all sources,
/// so that the partial sums stay in registers instead of being loaded and stored once per source
/// (the mix is O(listeners × sources) per tick when every listener's settings differ).
fn mix_mono(mix: &mut [f32], input: &TickInput<'_>, key: &MixKey, active: &[usize]) {
    for (c, out) in mix.chunks_exact_mut(CHUNK).enumerate() {
        let mut sum = [0.0f32; CHUNK];
        for (&(gain, _), &s) in key.iter().zip(active) {
            if gain == 0.0 {
                continue;
            }
            let source = &input.source(s)[c * CHUNK..(c + 1) * CHUNK];
            for (acc, x) in sum.iter_mut().zip(source) {
                *acc += gain * x;
            }
        }
        out.copy_from_slice(&sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONO: MixFormat = MixFormat { channels: 1, frame: 128, coded_bytes: 45 };

    #[test]
    fn equal_settings_hash_alike_and_mono_ignores_pan() {
        let active = [0, 2];
        let gains = [1.0, 1.0, 0.5];
        let fades = [1.0, 1.0, 1.0];
        let (mut a, mut b) = ([(0.0, 0.0); 2], [(0.0, 0.0); 2]);
        fill_key(&mut a, &active, &gains, &[0.0, 0.5, 0.5], &fades, 0, false);
        fill_key(&mut b, &active, &gains, &[0.5, 0.5, 1.0], &fades, 2, false);
        assert_eq!(a, b);
        assert_eq!(key_hash(MONO, &a), key_hash(MONO, &b));
        fill_key(&mut b, &active, &gains, &[0.5, 0.5, 1.0], &fades, 2, true);
        assert_ne!(a, b);
        let stereo = MixFormat { channels: 2, ..MONO };
        assert_ne!(key_hash(MONO, &a), key_hash(stereo, &a));
    }

    #[test]
    fn own_fade_scales_everybody_else() {
        let mut key = [(0.0, 0.0); 2];
        fill_key(&mut key, &[0, 1], &[1.0, 1.0], &[0.5, 0.5], &[1.0, 0.25], 1, false);
        assert_eq!(key, [(0.25, 0.5), (0.25, 0.5)]);
        fill_key(&mut key, &[0, 1], &[1.0, 1.0], &[0.5, 0.5], &[1.0, 0.25], 0, false);
        assert_eq!(key, [(1.0, 0.5), (0.25, 0.5)]);
    }

    #[test]
    fn the_mono_fast_path_equals_the_general_mix() {
        let tick = 128;
        let samples: Vec<f32> = (0..4 * tick * 2).map(|i| ((i * 7919) % 201) as f32 / 400.0 - 0.25).collect();
        let input = TickInput { samples: &samples, channels: &[1, 1, 1, 1], tick };
        let active = [0, 1, 3];
        let key = [(0.5, 0.5), (0.0, 0.5), (1.25, 0.5)];
        let mut fast = vec![0.0; tick];
        mix_mono(&mut fast, &input, &key, &active);
        let mut general = vec![0.0; tick];
        for (&(g, p), &s) in key.iter().zip(&active) {
            if g != 0.0 {
                add_source(&mut general, 1, input.source(s), 1, g, p);
            }
        }
        for (a, b) in fast.iter().zip(&general) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert!(fast.iter().any(|&x| x != 0.0));
    }

    #[test]
    fn renders_whole_frames_only() {
        let mut shared = SharedMix::new(MONO, 64, 4).unwrap();
        shared.claim(1, &[(1.0, 0.5)]);
        let samples = vec![0.1f32; 4 * 64 * 2];
        let input = TickInput { samples: &samples, channels: &[1, 0, 0, 0], tick: 64 };
        shared.render(&input, &[0]);
        assert_eq!(shared.coded().count(), 0, "half a 128-sample frame");
        shared.render(&input, &[0]);
        let frames: Vec<&[u8]> = shared.coded().collect();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].len(), 45);
    }
}
