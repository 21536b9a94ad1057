//! Encode -> decode keeps the frequency and level of sine tones.

mod common;

use common::*;
use tutti_codec::{Channels, Decoder, Encoder, FrameSize, Quality};

const AMP: f64 = 0.5; // -6 dBFS
const SECONDS: f64 = 0.25;
/// Skip the codec delay and the encoder's start-up before measuring.
const SETTLE_SAMPLES: usize = 2400; // 50 ms

struct Result {
    /// Per channel: measured dominant frequency, level change (dB), SNR (dB).
    channels: Vec<(f64, f64, f64)>,
}

/// Codes `input` (interleaved f64) through i16 or f32 and measures each channel.
fn code(frame: FrameSize, channels: Channels, freqs: &[f64], float: bool) -> Result {
    let n = (SECONDS * FS) as usize / frame.samples() * frame.samples();
    let tones: Vec<Vec<f64>> = freqs.iter().map(|&f| sine(f, AMP, n)).collect();
    let input = match channels {
        Channels::Mono => tones[0].clone(),
        Channels::Stereo => interleave(&tones[0], &tones[1]),
    };
    let mut enc = Encoder::new(frame, channels, Quality::Normal).unwrap();
    let mut dec = Decoder::new(frame, channels).unwrap();
    let mut packet = vec![0u8; enc.coded_bytes()];
    let mut output = Vec::with_capacity(input.len());
    let len = enc.pcm_len();
    if float {
        let input: Vec<f32> = input.iter().map(|&v| v as f32).collect();
        let mut pcm = vec![0f32; len];
        for f in input.chunks_exact(len) {
            enc.encode_float(f, &mut packet).unwrap();
            assert_eq!(dec.decode_float(Some(&packet), &mut pcm).unwrap(), frame.samples());
            output.extend(pcm.iter().map(|&v| f64::from(v)));
        }
    } else {
        let input = to_i16(&input);
        let mut pcm = vec![0i16; len];
        for f in input.chunks_exact(len) {
            enc.encode(f, &mut packet).unwrap();
            assert_eq!(dec.decode(Some(&packet), &mut pcm).unwrap(), frame.samples());
            output.extend(from_i16(&pcm));
        }
    }
    let result = (0..channels.count())
        .map(|c| {
            let out = &channel(&output, channels.count(), c)[SETTLE_SAMPLES..];
            let f = freqs[c];
            let dominant = dominant_frequency(out, 100.0, 4000.0, 10.0);
            let level = db(rms(out) / (AMP / 2f64.sqrt()));
            (dominant, level, tone_snr_db(out, f))
        })
        .collect();
    Result { channels: result }
}

fn check(frame: FrameSize, channels: Channels, freqs: &[f64], float: bool) {
    let r = code(frame, channels, freqs, float);
    for (c, &(dominant, level, snr)) in r.channels.iter().enumerate() {
        let what = format!(
            "{frame:?} {channels:?} ch{c} {} Hz float={float}: dominant {dominant} Hz, level {level:+.2} dB, SNR {snr:.1} dB",
            freqs[c]
        );
        eprintln!("{what}");
        assert!((dominant - freqs[c]).abs() <= 10.0, "{what}");
        assert!(level.abs() <= 1.5, "{what}");
        assert!(snr >= 25.0, "{what}");
    }
}

#[test]
fn mono_tones_opus64() {
    for f in [440.0, 1000.0] {
        check(FrameSize::Samples64, Channels::Mono, &[f], false);
    }
}

#[test]
fn mono_tones_opus128() {
    for f in [440.0, 1000.0] {
        check(FrameSize::Samples128, Channels::Mono, &[f], false);
    }
}

/// Left 1 kHz, right 440 Hz: also checks the L,R interleaving.
#[test]
fn stereo_tones_opus64() {
    check(FrameSize::Samples64, Channels::Stereo, &[1000.0, 440.0], false);
}

#[test]
fn stereo_tones_opus128() {
    check(FrameSize::Samples128, Channels::Stereo, &[1000.0, 440.0], false);
}

#[test]
fn float_path() {
    for frame in [FrameSize::Samples64, FrameSize::Samples128] {
        check(frame, Channels::Mono, &[1000.0], true);
        check(frame, Channels::Stereo, &[440.0, 1000.0], true);
    }
}

/// Decoders follow their own channel count: a mono decoder downmixes stereo
/// packets, a stereo decoder plays mono packets on both channels.
#[test]
fn channel_count_mismatch_between_packet_and_decoder() {
    let frame = FrameSize::Samples64;
    let n = 64 * 100;
    let tone = sine(1000.0, AMP, n);

    let mut enc = Encoder::new(frame, Channels::Mono, Quality::Normal).unwrap();
    let mut dec = Decoder::new(frame, Channels::Stereo).unwrap();
    let (mut packet, mut pcm, mut out) = (vec![0u8; enc.coded_bytes()], vec![0i16; 128], Vec::new());
    for f in to_i16(&tone).chunks_exact(64) {
        enc.encode(f, &mut packet).unwrap();
        dec.decode(Some(&packet), &mut pcm).unwrap();
        out.extend(from_i16(&pcm));
    }
    let (l, r) = (channel(&out, 2, 0), channel(&out, 2, 1));
    assert_eq!(l, r);
    assert!(db(rms(&l[SETTLE_SAMPLES..]) / (AMP / 2f64.sqrt())).abs() < 1.5);

    let mut enc = Encoder::new(frame, Channels::Stereo, Quality::Normal).unwrap();
    let mut dec = Decoder::new(frame, Channels::Mono).unwrap();
    let (mut packet, mut pcm, mut out) = (vec![0u8; enc.coded_bytes()], vec![0i16; 64], Vec::new());
    for f in to_i16(&interleave(&tone, &tone)).chunks_exact(128) {
        enc.encode(f, &mut packet).unwrap();
        dec.decode(Some(&packet), &mut pcm).unwrap();
        out.extend(from_i16(&pcm));
    }
    let level = db(rms(&out[SETTLE_SAMPLES..]) / (AMP / 2f64.sqrt()));
    eprintln!("stereo packet, mono decoder: level {level:+.2} dB");
    assert!(level.abs() < 1.5, "level {level:+.2} dB");
}
