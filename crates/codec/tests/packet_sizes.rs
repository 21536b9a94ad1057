//! Every encoder produces exactly the coded size Jamulus uses (CBR).

mod common;

use common::*;
use tutti_codec::{coded_bytes, coded_bytes_range, Channels, CodecError, Decoder, Encoder, FrameSize, Quality};

const FRAMES: [FrameSize; 2] = [FrameSize::Samples64, FrameSize::Samples128];
const CHANNELS: [Channels; 2] = [Channels::Mono, Channels::Stereo];
const QUALITIES: [Quality; 3] = [Quality::Low, Quality::Normal, Quality::High];

/// A loud, noisy test frame sequence (sine + pseudo-random noise), interleaved.
fn noisy(frame: FrameSize, channels: Channels, frames: usize) -> Vec<i16> {
    let n = frame.samples() * frames;
    let tone = sine(997.0, 0.4, n);
    let mut seed = 1u32;
    let mut x = Vec::with_capacity(n * channels.count());
    for v in tone {
        for _ in 0..channels.count() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            x.push(v + 0.3 * ((seed >> 8) as f64 / f64::from(1u32 << 24) - 0.5));
        }
    }
    to_i16(&x)
}

#[test]
fn jamulus_table() {
    use Channels::*;
    use FrameSize::*;
    use Quality::*;
    let expected = [
        (Samples64, Mono, [12, 22, 36]),
        (Samples64, Stereo, [24, 35, 73]),
        (Samples128, Mono, [25, 45, 82]),
        (Samples128, Stereo, [47, 71, 165]),
    ];
    for (frame, channels, sizes) in expected {
        for (quality, size) in [Low, Normal, High].into_iter().zip(sizes) {
            assert_eq!(coded_bytes(frame, channels, quality), size, "{frame:?} {channels:?} {quality:?}");
        }
    }
}

#[test]
fn encoded_packets_have_the_jamulus_sizes() {
    for frame in FRAMES {
        for channels in CHANNELS {
            let pcm = noisy(frame, channels, 20);
            let silence = vec![0i16; frame.samples() * channels.count()];
            for quality in QUALITIES {
                let size = coded_bytes(frame, channels, quality);
                let mut enc = Encoder::new(frame, channels, quality).unwrap();
                assert_eq!(enc.coded_bytes(), size);
                let mut packet = vec![0u8; size];
                for f in pcm.chunks_exact(enc.pcm_len()).chain([&silence[..]]) {
                    assert_eq!(enc.encode(f, &mut packet).unwrap(), size, "{frame:?} {channels:?} {quality:?}");
                    // CELT custom-mode header byte: end-band reduction 0, LM 0, stereo flag.
                    let header = if channels == Channels::Stereo { 0x04 } else { 0x00 };
                    assert_eq!(packet[0], header);
                }
                let fpcm: Vec<f32> = pcm.iter().map(|&v| f32::from(v) / 32768.0).collect();
                for f in fpcm.chunks_exact(enc.pcm_len()) {
                    assert_eq!(enc.encode_float(f, &mut packet).unwrap(), size);
                }
            }
        }
    }
}

/// Jamulus' silent OPUS64 mono frame (`00 ff fe 00 ...`, see the capture test) is
/// exactly what this encoder makes of digital silence.
#[test]
fn silence_is_bit_exact_with_jamulus() {
    let mut enc = Encoder::new(FrameSize::Samples64, Channels::Mono, Quality::Normal).unwrap();
    let mut packet = [0u8; 22];
    let mut expected = [0u8; 22];
    expected[1] = 0xff;
    expected[2] = 0xfe;
    for _ in 0..10 {
        enc.encode(&[0; 64], &mut packet).unwrap();
        assert_eq!(packet, expected);
    }
}

#[test]
fn every_size_in_range_is_honoured() {
    for frame in FRAMES {
        for channels in CHANNELS {
            let pcm = noisy(frame, channels, 3);
            let range = coded_bytes_range(frame, channels);
            for size in range.clone() {
                let mut enc = Encoder::with_coded_bytes(frame, channels, size).unwrap();
                let mut packet = vec![0u8; size];
                for f in pcm.chunks_exact(enc.pcm_len()) {
                    assert_eq!(enc.encode(f, &mut packet).unwrap(), size, "{frame:?} {channels:?}");
                }
            }
            for size in [0, 2, range.end() + 1] {
                assert!(matches!(
                    Encoder::with_coded_bytes(frame, channels, size),
                    Err(CodecError::CodedBytesOutOfRange { .. })
                ));
            }
        }
    }
    assert_eq!(coded_bytes_range(FrameSize::Samples64, Channels::Mono), 3..=125);
    assert_eq!(coded_bytes_range(FrameSize::Samples128, Channels::Stereo), 3..=500);
}

#[test]
fn wrong_buffer_sizes_are_errors() {
    let mut enc = Encoder::new(FrameSize::Samples128, Channels::Stereo, Quality::Normal).unwrap();
    let mut packet = [0u8; 71];
    assert_eq!(enc.encode(&[0; 128], &mut packet), Err(CodecError::PcmLength { expected: 256, actual: 128 }));
    assert_eq!(
        enc.encode(&[0; 256], &mut packet[..70]),
        Err(CodecError::PacketBufferLength { expected: 71, actual: 70 })
    );
    let mut dec = Decoder::new(FrameSize::Samples128, Channels::Stereo).unwrap();
    assert_eq!(dec.decode(None, &mut [0i16; 255]), Err(CodecError::PcmLength { expected: 256, actual: 255 }));
    assert_eq!(dec.decode(Some(&[0u8; 1276]), &mut [0i16; 256]), Err(CodecError::PacketTooLong(1276)));
    assert_eq!(FrameSize::from_samples(256), Err(CodecError::UnsupportedFrameSize(256)));
    assert_eq!(Channels::from_count(3), Err(CodecError::UnsupportedChannels(3)));
    let msg = CodecError::Opus { call: "opus_custom_encode", code: -1 }.to_string();
    assert_eq!(msg, "opus_custom_encode failed: invalid argument (opus error -1)");
}

#[test]
fn encoders_and_decoders_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Encoder>();
    assert_send::<Decoder>();
    let mut enc = Encoder::new(FrameSize::Samples64, Channels::Mono, Quality::Normal).unwrap();
    let n = std::thread::spawn(move || enc.encode(&[0; 64], &mut [0u8; 22]).unwrap()).join().unwrap();
    assert_eq!(n, 22);
}

#[test]
fn opus_version_is_vendored_1_6_1() {
    let v = tutti_codec::opus_version();
    assert_eq!(v, "libopus 1.6.1");
}
