//! Lost frames are concealed: `decode(None)` yields a full frame.

mod common;

use common::*;
use tutti_codec::{Channels, Decoder, Encoder, FrameSize, Quality};

#[test]
fn lost_frames_are_concealed() {
    for frame in [FrameSize::Samples64, FrameSize::Samples128] {
        for channels in [Channels::Mono, Channels::Stereo] {
            let mut enc = Encoder::new(frame, channels, Quality::Normal).unwrap();
            let mut dec = Decoder::new(frame, channels).unwrap();
            let len = enc.pcm_len();

            // Straight to concealment on a fresh decoder: a full frame. Note that
            // it is not digital silence: CELT's noise-based concealment starts
            // from its initial band energies and gives low-level noise (about
            // -35 dBFS peak in the first frame).
            let mut pcm = vec![0i16; len];
            assert_eq!(dec.decode(None, &mut pcm).unwrap(), frame.samples());
            let first = peak(&from_i16(&pcm));
            eprintln!("{frame:?} {channels:?}: fresh-decoder concealment peak {:.1} dBFS", db(first));
            assert!(first < 0.1, "{frame:?} {channels:?}: {pcm:?}");

            // A tone, then a few lost frames: concealment continues it...
            let n = 100 * frame.samples();
            let tone = sine(440.0, 0.5, n);
            let tone = to_i16(&match channels {
                Channels::Mono => tone,
                Channels::Stereo => interleave(&tone, &tone),
            });
            let mut packet = vec![0u8; enc.coded_bytes()];
            for f in tone.chunks_exact(len) {
                enc.encode(f, &mut packet).unwrap();
                dec.decode(Some(&packet), &mut pcm).unwrap();
            }
            let mut concealed = Vec::new();
            for i in 0..3 {
                // `Some(&[])` is treated like `None`.
                let lost: Option<&[u8]> = if i == 1 { Some(&[]) } else { None };
                assert_eq!(dec.decode(lost, &mut pcm).unwrap(), frame.samples());
                concealed.extend(from_i16(&pcm));
            }
            assert!(rms(&concealed) > 0.1, "{frame:?} {channels:?}: concealment is silent");

            // ...and fades out when the loss goes on (about 0.5 s here).
            for _ in 0..(24_000 / frame.samples()) {
                dec.decode(None, &mut pcm).unwrap();
            }
            assert!(rms(&from_i16(&pcm)) < 0.01, "{frame:?} {channels:?}: concealment does not fade");

            // Float output works the same way, and decoding resumes after the loss.
            let mut fpcm = vec![0f32; len];
            assert_eq!(dec.decode_float(None, &mut fpcm).unwrap(), frame.samples());
            enc.encode(&tone[..len], &mut packet).unwrap();
            assert_eq!(dec.decode_float(Some(&packet), &mut fpcm).unwrap(), frame.samples());
        }
    }
}

#[test]
fn reset_restores_a_fresh_state() {
    let frame = FrameSize::Samples64;
    let mut enc = Encoder::new(frame, Channels::Mono, Quality::Normal).unwrap();
    let mut fresh = Encoder::new(frame, Channels::Mono, Quality::Normal).unwrap();
    let tone = to_i16(&sine(1000.0, 0.5, 64 * 10));
    let (mut a, mut b) = ([0u8; 22], [0u8; 22]);
    for f in tone.chunks_exact(64) {
        enc.encode(f, &mut a).unwrap();
    }
    enc.reset().unwrap();
    for f in tone.chunks_exact(64) {
        enc.encode(f, &mut a).unwrap();
        fresh.encode(f, &mut b).unwrap();
        assert_eq!(a, b);
    }
    let mut dec = Decoder::new(frame, Channels::Mono).unwrap();
    dec.decode(Some(&a), &mut [0i16; 64]).unwrap();
    dec.reset().unwrap();
}
