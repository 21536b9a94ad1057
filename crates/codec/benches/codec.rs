//! Cost of encoding / decoding one frame, per Jamulus mode.
//!
//! Input: 1 s of a 440 Hz + 1.1 kHz mix with white noise (about -12 dBFS),
//! so the encoder sees realistic non-silent, non-stationary frames; the bench
//! cycles through the frames (and the packets coded from them) in order.
//!
//! `cargo bench -p tutti-codec`; `bench/codec.sh` prints a summary table.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tutti_codec::{Channels, Decoder, Encoder, FrameSize, Quality, SAMPLE_RATE_HZ};

const MODES: [(FrameSize, Channels, &str); 4] = [
    (FrameSize::Samples64, Channels::Mono, "opus64_mono_normal"),
    (FrameSize::Samples64, Channels::Stereo, "opus64_stereo_normal"),
    (FrameSize::Samples128, Channels::Mono, "opus128_mono_normal"),
    (FrameSize::Samples128, Channels::Stereo, "opus128_stereo_normal"),
];

/// One second of interleaved test signal.
fn signal(channels: Channels) -> Vec<i16> {
    let mut seed: u32 = 0x1234_5678;
    let n = SAMPLE_RATE_HZ as usize;
    let mut out = Vec::with_capacity(n * channels.count());
    for i in 0..n {
        let t = i as f32 / SAMPLE_RATE_HZ as f32;
        for c in 0..channels.count() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            let f2 = if c == 0 { 1100.0 } else { 1320.0 };
            let x = 0.15 * (std::f32::consts::TAU * 440.0 * t).sin()
                + 0.1 * (std::f32::consts::TAU * f2 * t).sin()
                + 0.05 * noise;
            out.push((x * 32767.0) as i16);
        }
    }
    out
}

fn bench_codec(c: &mut Criterion) {
    for (frame, channels, name) in MODES {
        let pcm = signal(channels);
        let frame_len = frame.samples() * channels.count();
        let frames: Vec<&[i16]> = pcm.chunks_exact(frame_len).collect();

        let mut enc = Encoder::new(frame, channels, Quality::Normal).unwrap();
        let bytes = enc.coded_bytes();
        let packets: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| {
                let mut p = vec![0u8; bytes];
                enc.encode(f, &mut p).unwrap();
                p
            })
            .collect();

        let mut group = c.benchmark_group("encode");
        let mut enc = Encoder::new(frame, channels, Quality::Normal).unwrap();
        let mut packet = vec![0u8; bytes];
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                enc.encode(black_box(frames[i]), &mut packet).unwrap();
                black_box(&packet);
            })
        });
        group.finish();

        let mut group = c.benchmark_group("decode");
        let mut dec = Decoder::new(frame, channels).unwrap();
        let mut out = vec![0i16; frame_len];
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % packets.len();
                dec.decode(Some(black_box(&packets[i])), &mut out).unwrap();
                black_box(&out);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
